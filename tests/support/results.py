"""Results built by hand (no request made): images and a small grid with an error row."""

from __future__ import annotations

from mesh_magic.core.errors import ServerError
from mesh_magic.core.results import GeneratedImage, ImageResult, ItemError

from .images import make_image


def image(
    row: int = 0,
    index: int = 0,
    *,
    width: int = 40,
    height: int = 20,
    model: str = "m/a",
    prompt: str = "a red fox",
    request_id: str | None = "req_1",
    revised: str | None = None,
    mode: str = "RGB",
) -> GeneratedImage:
    return GeneratedImage(
        data=make_image(width, height, mode=mode),
        mime_type="image/png",
        width=width,
        height=height,
        prompt=prompt,
        model=model,
        revised_prompt=revised,
        request_id=request_id,
        created=1700000000,
        params={"model": model, "n": 1, "size": f"{width}x{height}", "seed": 3},
        row=row,
        index=index,
    )


def grid() -> ImageResult:
    """Four images in two rows, out of order, and a third row that failed."""
    images = [
        image(1, 1, model="m/b", request_id="req_2"),
        image(0, 0),
        image(1, 0, model="m/b", request_id="req_2"),
        image(0, 1),
    ]
    errors = [
        ItemError("a red fox", "m/c", ServerError("provider died", status=500, request_id="req_3"), row=2)
    ]
    rows = [("a red fox", "m/a"), ("a red fox", "m/b"), ("a red fox", "m/c")]
    return ImageResult(images, errors, rows=rows, usage={"total_tokens": 9}, display_max_px=64)
