"""mesh_magic: MeshAPI image generation in IPython and Jupyter.

`%load_ext mesh_magic` registers %%meshimg and friends; `import mesh_magic`
gives the Python API. Names resolve lazily so that loading the extension stays
fast and never imports ipywidgets or Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .core import results as _results

_EXPORTS = {
    "generate": ".api",
    "agenerate": ".api",
    "generate_many": ".api",
    "edit": ".api",
    "aedit": ".api",
    "configure": ".api",
    "login": ".api",
    "forget_key": ".api",
    "models": ".api",
    "history": ".api",
    "spend": ".api",
    "panel": ".widget_panel",
    "ImageResult": ".core.results",
    "GeneratedImage": ".core.results",
    "ItemError": ".core.results",
    "MeshImg": ".core.config",
    "MeshImageError": ".core.errors",
    "InvalidOptionError": ".core.errors",
    "AuthenticationError": ".core.errors",
    "InsufficientBalanceError": ".core.errors",
    "PermissionDeniedError": ".core.errors",
    "ModelNotFoundError": ".core.errors",
    "InvalidRequestError": ".core.errors",
    "RateLimitError": ".core.errors",
    "ServerError": ".core.errors",
    "UnsupportedModelError": ".core.errors",
    "APIConnectionError": ".core.errors",
    "APITimeoutError": ".core.errors",
    "ResponseError": ".core.errors",
    "CacheMissError": ".core.errors",
    "MeshImageWarning": ".core.errors",
    "StoreError": ".core.errors",
    "MissingDependencyError": ".core.errors",
    "CostLimitError": ".core.cost",
}

__all__ = sorted(_EXPORTS) + ["load_ipython_extension", "unload_ipython_extension"]

if TYPE_CHECKING:
    from .api import (
        aedit as aedit,
        agenerate as agenerate,
        configure as configure,
        edit as edit,
        forget_key as forget_key,
        generate as generate,
        generate_many as generate_many,
        history as history,
        login as login,
        models as models,
        spend as spend,
    )
    from .core.config import MeshImg as MeshImg
    from .core.cost import CostLimitError as CostLimitError
    from .core.errors import (
        APIConnectionError as APIConnectionError,
        APITimeoutError as APITimeoutError,
        AuthenticationError as AuthenticationError,
        CacheMissError as CacheMissError,
        InsufficientBalanceError as InsufficientBalanceError,
        InvalidOptionError as InvalidOptionError,
        InvalidRequestError as InvalidRequestError,
        MeshImageError as MeshImageError,
        MeshImageWarning as MeshImageWarning,
        MissingDependencyError as MissingDependencyError,
        ModelNotFoundError as ModelNotFoundError,
        PermissionDeniedError as PermissionDeniedError,
        RateLimitError as RateLimitError,
        ResponseError as ResponseError,
        ServerError as ServerError,
        StoreError as StoreError,
        UnsupportedModelError as UnsupportedModelError,
    )
    from .core.results import (
        GeneratedImage as GeneratedImage,
        ImageResult as ImageResult,
        ItemError as ItemError,
    )
    from .widget_panel import panel as panel


# The package wires the layers: results display through the rendering layer's grid,
# imported the first time a result is shown.
_results.use_renderer("mesh_magic.render.grid:render_result")
# ... and GeneratedImage.edit(), .upscale(), ... through the Python API's edit().
_results.use_editor("mesh_magic.api:_edit_image")
# ... and ImageResult.to_html() through the rendering layer's page.
_results.use_page("mesh_magic.render.page:render_page")


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
    from .core.results import ImageResult

    ipython.display_formatter.ipython_display_formatter.type_printers.pop(ImageResult, None)
