"""Child process: run `MeshServer` until stdin closes (`python bench_serve.py KEY LATENCY [--fixed]`).

`--fixed` answers every prompt with the same image per size, made once: bulk runs send thousands
of distinct prompts, and drawing each would make the server, not the client, the bottleneck on
a 2-core machine. The image is two thirds noise, so its PNG is as big as a real model's picture
(about 2 MB at 1024x1024, 130 KB at 256x256) rather than a flat preview that compresses to little.
"""

from __future__ import annotations

import functools
import random
import sys

from mesh_magic.server import MeshServer, _images


def _fix_previews() -> None:
    @functools.lru_cache(maxsize=16)
    def fixed(width: int, height: int, fmt: str, model: str) -> bytes:
        from PIL import Image

        noisy = height * 2 // 3
        img = Image.new("RGB", (width, height), (40, 90, 160))
        rng = random.Random(width * 7919 + height)
        img.paste(Image.frombytes("RGB", (width, noisy), rng.randbytes(width * noisy * 3)), (0, 0))
        return _images.encode(img, fmt)

    def render(
        prompt: str,
        *,
        model: str,
        seed: int | None,
        index: int,
        width: int,
        height: int,
        fmt: str = "png",
        label: str = "",
    ) -> bytes:
        return fixed(width, height, fmt, model)

    _images.render_preview = render  # type: ignore[assignment]


def main() -> None:
    key, latency = sys.argv[1], float(sys.argv[2])
    if "--fixed" in sys.argv[3:]:
        _fix_previews()
    with MeshServer(api_key=key, latency=latency) as server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            command, _, value = line.strip().partition(" ")
            if command == "latency":
                server.latency = float(value)
            print("ok", flush=True)


if __name__ == "__main__":
    main()
