"""`GeneratedImage.data` as a descriptor: bytes held in memory, or read back from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from .results import GeneratedImage


class ImageBytes:
    """`GeneratedImage.data`: the bytes held in memory, or read back from the store.

    Once an image is in the store it holds no bytes (a run of 10,000 images stays
    small); each read checks the file against the sha256 recorded when it was stored.
    """

    @overload
    def __get__(self, image: None, owner: Any) -> ImageBytes: ...
    @overload
    def __get__(self, image: GeneratedImage, owner: Any) -> bytes: ...
    def __get__(self, image: GeneratedImage | None, owner: Any = None) -> bytes | ImageBytes:
        if image is None:
            return self
        held: bytes | None = image.__dict__.get("_data")
        return held if held is not None else image._read_stored()

    def __set__(self, image: GeneratedImage, value: bytes | None) -> None:
        image.__dict__["_data"] = value
