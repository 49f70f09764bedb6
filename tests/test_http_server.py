"""acauth's HTTP server on its own, with small ASGI apps: framing, pipelining, timeouts,
graceful stop, failures. Real sockets on loopback, the server on the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from acauth.server.http import HttpServer, Limits
from acauth.server.serving import listening_socket

BODY = b'{"ok":true}'
DIRECT = (200, ((b"content-type", b"application/json"), (b"content-length", b"11")), BODY)


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the request's method, path and body; streams when asked to."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/fail":
        raise RuntimeError("boom")
    if scope["path"] == "/slow":
        await asyncio.sleep(0.5)
    text = b"%s %s %s" % (scope["method"].encode(), scope["path"].encode(), body)
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-length", b"%d" % len(text))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": text})


@asynccontextmanager
async def serving(**limits: Any) -> AsyncIterator[tuple[HttpServer, int]]:
    server = HttpServer(
        echo,
        limits=Limits(**limits),
        direct={b"/direct": lambda headers: DIRECT},
        busy_body=b"busy",
        failure_body=b"failed",
    )
    sock = listening_socket("127.0.0.1", 0, 128)
    await server.start(sock)
    try:
        yield server, sock.getsockname()[1]
    finally:
        await server.stop(2)
        sock.close()


async def exchange(port: int, data: bytes, until: Callable[[bytes], bool] | None = None) -> bytes:
    """Send ``data``; what comes back until the server closes (or ``until`` holds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    got = b""
    try:
        async with asyncio.timeout(10):
            while not (until and until(got)):
                more = await reader.read(65536)
                if not more:
                    break
                got += more
    finally:
        writer.close()
    return got


def bodies(answer: bytes) -> list[bytes]:
    """The bodies of the answers in ``answer`` (each with a content-length)."""
    out = []
    while answer:
        head, _, rest = answer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        out.append(rest[:length])
        answer = rest[length:]
    return out


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving() as (_, port):
        requests = (
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /direct HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /direct HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answer = await exchange(port, requests)
    # Behind a request in flight, a direct path waits its turn and goes through the app
    # (acauth's app answers it as the direct handler does).
    assert bodies(answer) == [b"GET /slow ", b"GET /direct ", b"POST /a abc", b"GET /direct "]


async def test_content_length_with_transfer_encoding_is_refused() -> None:
    async with serving() as (_, port):
        answer = await exchange(
            port,
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b"\r\n\r\n")  # a bare refusal, and the connection closed


async def test_a_chunked_request_body_and_a_streamed_answer() -> None:
    async with serving() as (_, port):
        answer = await exchange(
            port,
            b"POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert body == b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n"


async def test_head_answers_carry_no_body() -> None:
    async with serving() as (_, port):
        answer = await exchange(port, b"HEAD /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 8\r\n" in answer  # "HEAD /a " had there been a body
    assert answer.endswith(b"\r\n\r\n")


async def test_expect_100_continue_is_answered_when_the_body_is_asked_for() -> None:
    async with serving() as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == (
            b"HTTP/1.1 100 Continue\r\n\r\n"
        )
        writer.write(b"ok")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await reader.readexactly(9) == b"POST /a ok"[:9]
        writer.close()


async def test_a_failing_app_gets_a_500_with_the_failure_body() -> None:
    async with serving() as (_, port):
        answer = await exchange(port, b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert b"connection: close" in answer
    assert answer.endswith(b"\r\n\r\nfailed")


async def test_the_keep_alive_timeout_is_its_own() -> None:
    """A kept-alive connection idle past its timeout is closed; a head under way gets
    the (longer) header timeout."""
    async with serving(keepalive_timeout_s=0.3, header_timeout_s=5) as (_, port):
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /direct HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(BODY)
        start = loop.time()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert 0.2 < loop.time() - start < 2
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /direct HTTP/1.1\r\nHo")
        await asyncio.sleep(1)
        writer.write(b"st: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(BODY), 5)).startswith(b"HTTP/1.1 200")
        writer.close()


async def test_a_stop_lets_the_request_in_flight_finish_and_closes_idle_ones() -> None:
    async with serving() as (server, port):
        idle_reader, idle = await asyncio.open_connection("127.0.0.1", port)
        busy = asyncio.create_task(exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"))
        await asyncio.sleep(0.1)
        await server.stop(5)
        answer = await busy
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        idle.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in answer
    assert answer.endswith(b"GET /slow ")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # no longer listening
