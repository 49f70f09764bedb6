"""Serve an app under granian, the server acauth shipped on before its own.

``python -m bench.granian_app TARGET --port N [--interface rsgi] [--factory] [--workers N]``

With the limits acauth holds to (HTTP/1.1 only, the header block cap and timeout,
the connection cap) from the settings of the environment (``ACAUTH_*``, defaults
without), on uvloop: the options acauth used to give it.
"""

from __future__ import annotations

import argparse


def main() -> None:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    from acauth.config import Settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", choices=("asgi", "rsgi"), default="asgi")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = Settings.from_env()
    Server(
        args.target,
        address="127.0.0.1",
        port=args.port,
        interface=Interfaces(args.interface),
        workers=args.workers,
        factory=args.factory,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        backlog=settings.backlog,
        backpressure=settings.max_connections,
        http1_settings=HTTP1Settings(
            header_read_timeout=round(settings.header_timeout_s * 1000),
            keep_alive=True,
            max_buffer_size=settings.max_header_block_bytes,
        ),
        log_level=LogLevels.warning,
    ).serve()


if __name__ == "__main__":
    main()
