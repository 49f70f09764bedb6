"""acauth's HTTP/1.1 server: llhttp (httptools) on an asyncio (uvloop) protocol.

It serves any ASGI application, and answers the paths it is given a *direct*
handler for without ASGI: parsed, answered and written in the one call that read
the request (no task, no message dicts). It holds the front door's limits itself:
the request head is capped in bytes and lines, a head must arrive within the header
timeout and an idle keep-alive connection is closed after its own, connections past
the cap are refused at once (503), and a request body is read only when the
application asks for it, a little at a time.

- :mod:`.connection`: one connection (parsing, limits, direct answers, pipelining);
- :mod:`.cycle`: one request handed to the ASGI application;
- :mod:`.server`: the listener, its connections, the timers, graceful shutdown;
- :mod:`.lifespan`: the application's startup and shutdown.
"""

from __future__ import annotations

from acauth.server.http.limits import Direct, DirectAnswer, Limits
from acauth.server.http.server import HttpServer

__all__ = ["Direct", "DirectAnswer", "HttpServer", "Limits"]
