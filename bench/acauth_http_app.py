"""Serve an app on acauth's own HTTP server (:mod:`acauth.server.http`), default limits.

``python -m bench.acauth_http_app TARGET --port N [--direct PATH]``

``TARGET`` is an ASGI app (``module:attr``); with ``--direct PATH``, GET requests to
``PATH`` are answered by ``module:direct`` without ASGI, as acauth answers tokens/state.
"""

from __future__ import annotations

import argparse
import importlib


def main() -> None:
    from acauth.server.http import HttpServer, Limits
    from acauth.server.serving import listening_socket, run, serve_until_signalled

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--direct", default=None)
    parser.add_argument("--workers", type=int, default=1)  # accepted; one worker only
    args = parser.parse_args()
    module_name, _, attr = args.target.partition(":")
    module = importlib.import_module(module_name)
    direct = {args.direct.encode(): module.direct} if args.direct else {}
    limits = Limits()
    server = HttpServer(getattr(module, attr), limits=limits, direct=direct)
    sock = listening_socket("127.0.0.1", args.port, limits.backlog)
    run(lambda: serve_until_signalled(server, sock))


if __name__ == "__main__":
    main()
