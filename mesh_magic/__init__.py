"""mesh_magic: MeshAPI image generation in IPython and Jupyter.

`%load_ext mesh_magic` registers %%meshimg and friends; `import mesh_magic`
gives the Python API. Names resolve lazily so that loading the extension stays
fast and never imports ipywidgets or Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "generate": "._api",
    "agenerate": "._api",
    "generate_many": "._api",
    "configure": "._api",
    "login": "._api",
    "models": "._api",
    "history": "._api",
    "panel": "._panel",
    "ImageResult": "._results",
    "GeneratedImage": "._results",
    "ItemError": "._results",
    "MeshImg": "._config",
    "MeshImageError": "._errors",
    "InvalidOptionError": "._errors",
    "AuthenticationError": "._errors",
    "InsufficientBalanceError": "._errors",
    "PermissionDeniedError": "._errors",
    "ModelNotFoundError": "._errors",
    "InvalidRequestError": "._errors",
    "RateLimitError": "._errors",
    "ServerError": "._errors",
    "UnsupportedModelError": "._errors",
    "APIConnectionError": "._errors",
    "APITimeoutError": "._errors",
    "ResponseError": "._errors",
    "CacheMissError": "._errors",
}

__all__ = sorted(_EXPORTS) + ["load_ipython_extension", "unload_ipython_extension"]

if TYPE_CHECKING:
    from ._api import agenerate, configure, generate, generate_many, history, login, models
    from ._config import MeshImg
    from ._errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        CacheMissError,
        InsufficientBalanceError,
        InvalidOptionError,
        InvalidRequestError,
        MeshImageError,
        ModelNotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseError,
        ServerError,
        UnsupportedModelError,
    )
    from ._panel import panel
    from ._results import GeneratedImage, ImageResult, ItemError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mesh_magic' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext mesh_magic`: register the MeshImg config and the magics."""
    from .magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from ._results import ImageResult

    ipython.display_formatter.ipython_display_formatter.type_printers.pop(ImageResult, None)
