"""Serve an app under granian with the options ``acauth serve`` gives acauth.

``python -m bench.granian_app TARGET --port N [--interface rsgi] [--factory] [--workers N]``

The options come from :func:`acauth.server.app.http_options` with the settings
of the environment (``ACAUTH_*``, defaults without), and the event loop is
chosen the same way: a baseline runs on exactly the server acauth ships with.
"""

from __future__ import annotations

import argparse


def main() -> None:
    from importlib.util import find_spec

    from granian.constants import Interfaces, Loops
    from granian.server import Server

    from acauth.config import Settings
    from acauth.server.app import http_options

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", choices=("asgi", "rsgi"), default="asgi")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    Server(
        args.target,
        address="127.0.0.1",
        port=args.port,
        interface=Interfaces(args.interface),
        workers=args.workers,
        factory=args.factory,
        loop=Loops.uvloop if find_spec("uvloop") else Loops.asyncio,
        **http_options(Settings.from_env()),
    ).serve()


if __name__ == "__main__":
    main()
