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
    if scope["path"] == "/unread":  # answers without reading the body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"unread"})
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


def flood(port: int, request: bytes, limit: int) -> int:
    """Send ``request`` over and over on one connection that never reads, until the
    server stops taking bytes for 1 s or ``limit`` bytes went; how many were sent."""
    burst = request * max(1, 65536 // len(request))
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(1)
        try:
            while sent < limit:
                sent += sock.send(burst)
        except TimeoutError:
            pass
    return sent


@pytest.mark.parametrize("path", [b"/direct", b"/a"], ids=["direct", "asgi"])
async def test_a_client_that_pipelines_without_reading_is_held_to_a_bounded_buffer(
    path: bytes,
) -> None:
    async with serving() as (server, port):
        request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path
        sending = asyncio.create_task(asyncio.to_thread(flood, port, request, 64 << 20))
        held = 0
        while not sending.done():
            for conn in list(server.connections):
                assert conn.transport is not None
                buffered = conn.transport.get_write_buffer_size() + len(conn._backlog)
                held = max(held, buffered + 2048 * len(conn._pipeline))
            await asyncio.sleep(0.05)
        sent = await sending
    # The kernel's buffers take some megabytes; the server holds little of its own.
    assert sent < 16 << 20, sent
    assert held < 2 << 20, held


async def test_a_bad_request_behind_good_ones_is_refused_after_their_answers() -> None:
    async with serving() as (_, port):
        answer = await exchange(
            port,
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz"
            b"GET / HTTP/1.1\r\nHost: x\r\n bad-fold\r\n\r\n",
        )
    first, second, refusal = answer.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 ") and first.endswith(b"GET /slow ")
    assert second.startswith(b"200 ") and second.endswith(b"POST /a z")
    assert refusal.startswith(b"400 ") and refusal.endswith(b"\r\n\r\n")


async def test_a_malformed_body_is_refused_with_400() -> None:
    async with serving() as (_, port):
        answer = await exchange(
            port, b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"date: " in answer


async def test_head_of_a_streamed_answer_has_no_framing() -> None:
    async with serving() as (_, port):
        answer = await exchange(
            port,
            b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert rest.startswith(b"HTTP/1.1 200 ")  # the next answer, nothing in between


@pytest.mark.parametrize("size", [66_000, 79_000, 100_000])
async def test_a_head_over_the_cap_sent_at_once_is_refused(size: int) -> None:
    async with serving() as (_, port):
        head = b"GET /a HTTP/1.1\r\nHost: x\r\nx-pad: " + b"p" * size + b"\r\n\r\n"
        answer = await exchange(port, head)
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_the_header_timeout_restarts_at_the_next_heads_first_byte() -> None:
    """A head begun within the keep-alive timeout has the header timeout to complete,
    even past the keep-alive one."""
    async with serving(keepalive_timeout_s=0.6, header_timeout_s=5) as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /direct HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(BODY)
        await asyncio.sleep(0.4)
        writer.write(b"GET /direct HTTP/1.1\r\n")
        await asyncio.sleep(0.6)  # 1 s after the answer, past the keep-alive timeout
        writer.write(b"Host: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(BODY), 5)).startswith(b"HTTP/1.1 200")
        writer.close()


async def test_requests_sent_before_a_half_close_are_all_answered() -> None:
    async with serving() as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /direct HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert bodies(answer) == [b"GET /slow ", b"GET /a ", b"GET /direct "]


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET /direct\r\n\r\n", b"400"),
        (b"GET /direct HTTP/2.0\r\nHost: x\r\n\r\n", b"400"),
        (
            b"GET http://127.0.0.1/direct?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"200",
        ),
    ],
    ids=["http-0.9", "http-2.0", "absolute-form"],
)
async def test_the_request_line(line: bytes, status: bytes) -> None:
    async with serving() as (_, port):
        answer = await exchange(port, line)
    assert answer[9:12] == status, answer


async def test_an_unread_body_that_filled_the_buffer_does_not_stall_the_next_request() -> None:
    async with serving() as (_, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b"b" * 100_000
        writer.write(b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        writer.write(b"GET /direct HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(BODY), 2)).startswith(b"HTTP/1.1 200")
        writer.close()
