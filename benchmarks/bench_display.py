"""Display cost: image bytes -> rendered thumbnail grid, and what one image adds to a saved .ipynb."""

from __future__ import annotations

import io
import time

from benchmarks.bench_common import Row, log, median

PROMPT = "benchmark display: a lighthouse on a cliff at dawn"
MODEL = "openai/gpt-image-1"


def _notebook_bytes(outputs: list) -> int:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cell = new_code_cell("%%meshimg\n" + PROMPT, outputs=outputs, execution_count=1)
    return len(nbformat.writes(new_notebook(cells=[cell])).encode("utf-8"))


def run(repeats: int = 15) -> list[Row]:
    from nbformat.v4 import new_output
    from PIL import Image

    from mesh_magic.core import config as _config
    from mesh_magic.core.images import inspect_image
    from mesh_magic.core.results import GeneratedImage, ImageResult
    from mesh_magic.render.grid import render_result
    from mesh_magic.server import render_preview

    data = render_preview(PROMPT, model=MODEL, seed=1, index=0, width=1024, height=1024)
    default_px = _config.resolve().display_max_px

    def rendered(max_px: int) -> tuple[dict, dict]:
        info = inspect_image(data)
        image = GeneratedImage(
            data=data,
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            prompt=PROMPT,
            model=MODEL,
            request_id="req_bench",
        )
        return render_result(ImageResult([image], display_max_px=max_px))

    def decode_only() -> None:
        with Image.open(io.BytesIO(data)) as img:
            img.load()

    def timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
        fn(*args)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            samples.append(time.perf_counter() - start)
        return median(samples) * 1000

    log(f"  display: {repeats} renders each (thumbnail at {default_px}px, full embedding, PIL decode)")
    thumb_ms = timed(rendered, default_px)
    full_ms = timed(rendered, 0)
    decode_ms = timed(decode_only)

    empty = _notebook_bytes([])
    sizes = {}
    for label, px in (("default", default_px), ("full", 0)):
        bundle, metadata = rendered(px)
        output = new_output("display_data", data=bundle, metadata=metadata)
        sizes[label] = _notebook_bytes([output]) - empty
    extra = {
        "image_bytes": len(data),
        "display_max_px": default_px,
        "notebook_delta_bytes": sizes,
        "repeats": repeats,
    }
    return [
        Row(
            "display",
            f"bytes -> displayed grid, thumbnail {default_px}px, vs PIL full decode",
            thumb_ms,
            "ms",
            "PIL decode of the image",
            decode_ms,
            "informational",
            note="the floor for any downscaled thumbnail",
            extra=extra,
        ),
        Row(
            "display",
            "bytes -> displayed grid, display_max_px=0 (full embed)",
            full_ms,
            "ms",
            "PIL decode of the image",
            decode_ms,
            "informational",
        ),
        Row(
            "display",
            f".ipynb bytes per image, default ({default_px}px) vs full embedding",
            sizes["default"] / 1024,
            "KiB",
            "display_max_px=0",
            sizes["full"] / 1024,
            "< 1.00x",
            met=sizes["default"] < sizes["full"],
            note="offline previews compress well; real 1024px PNGs are often 1-2 MB",
        ),
    ]
