"""Child process: run `MeshServer` until stdin closes (`python bench_serve.py KEY LATENCY`)."""

from __future__ import annotations

import sys

from mesh_magic.server import MeshServer


def main() -> None:
    key, latency = sys.argv[1], float(sys.argv[2])
    with MeshServer(api_key=key, latency=latency) as server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            command, _, value = line.strip().partition(" ")
            if command == "latency":
                server.latency = float(value)
            print("ok", flush=True)


if __name__ == "__main__":
    main()
