"""Command line: serve the MeshAPI-compatible server until Ctrl-C."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mesh_magic.server",
        description="Serve a local MeshAPI-compatible API (offline preview images).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="key clients must send (default: $MESHAPI_API_KEY; if neither is set, any key is accepted)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="simulated seconds of work per generation")
    parser.add_argument(
        "--image-host", default=None, help="host name for url-format image links, e.g. localhost"
    )
    parser.add_argument("--allow-remote", action="store_true", help="allow a --host other than loopback")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"refusing to listen on {args.host!r}: it is not loopback and this server has "
            "no real security (pass --allow-remote to insist)",
            file=sys.stderr,
        )
        return 2
    api_key = args.api_key or os.environ.get("MESHAPI_API_KEY") or None

    import socket

    import uvicorn

    from ._app import create_app

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # An explicit IPPROTO_TCP lets asyncio turn on TCP_NODELAY (no ~40 ms Nagle stalls).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    # Bound before the app is built, so --port 0 reports and links the real port.
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    image_base = f"http://{args.image_host}:{port}" if args.image_host else None
    app = create_app(api_key=api_key, latency=args.latency, image_base_url=image_base)
    print(
        f"MeshAPI-compatible server on http://{shown_host}:{port} (key check: {'on' if api_key else 'off'})",
        flush=True,
    )
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
