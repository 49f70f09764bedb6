"""Where the time of a request goes: ``python -m bench.profile`` (see bench/README.md).

``inprocess``: the ASGI handlers called in a loop without a server — microseconds
per request of acauth's own code (one token, 20,000 distinct tokens) against the
bare app, and cProfile's functions by own time.

``server TARGET``: the server under wrk's load as in ``bench.run``; the CPU each
thread of the worker used per request, then py-spy's samples of the event
loop's thread (while it holds the GIL, except for renewals, which also count
SQLite's work without it), by function (``pip install py-spy``; ``--py-spy PATH``
if it is not on PATH). TARGET: state, uncached, bare, renewals, storm.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import pstats
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench import servers
from bench.run import STATE, login_token, mint, start_wrk, write_lines, wrk, wrk_result

Message = MutableMapping[str, Any]


def scope(token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": STATE,
        "raw_path": STATE.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"token", token.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Message) -> None:
    return None


def inprocess(n: int) -> None:
    from acauth.config import Settings
    from acauth.server.app import create_app
    from bench.baselines import bare

    n = max(1, n // 20_000) * 20_000  # every distinct token misses the verifier's memory
    secret = secrets.token_hex(32)
    tmp = Path(tempfile.mkdtemp(prefix="acauth-profile-"))
    data = tmp / "data"
    servers.seed_demo(data, secret)
    scopes = [scope(t) for t in mint(data, secret, 20_000)]

    async def main() -> None:
        app = create_app(Settings(data_dir=data, secret=SecretStr(secret), demo=True))
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: asyncio.Queue[Message] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        life = asyncio.create_task(
            app.app({"type": "lifespan", "state": {}}, inbox.get, outbox.put)
        )
        print((await outbox.get())["type"])
        sent: list[Message] = []

        async def keep(message: Message) -> None:
            sent.append(message)

        await app(scopes[0], receive, keep)
        assert sent[-1]["body"] == servers.BODY.encode(), sent

        def loop(handler: Callable[..., Awaitable[None]], distinct: int) -> Callable[[], Any]:
            async def run() -> None:
                for i in range(n):
                    await handler(scopes[i % distinct], receive, discard)

            return run

        cases = {
            "bare ASGI app": loop(bare.app, 1),
            "acauth, one token": loop(app, 1),
            "acauth, 20,000 distinct tokens": loop(app, 20_000),
        }
        await cases["acauth, 20,000 distinct tokens"]()  # every signature seen once
        print(f"\n{'handler':32s} µs per request (best of 3, {n:,} requests)")
        for name, run in cases.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                await run()
                best = min(best, (time.perf_counter() - started) / n)
            print(f"{name:32s} {best * 1e6:6.2f}")
        for name in ("acauth, one token", "acauth, 20,000 distinct tokens"):
            profile = cProfile.Profile()
            profile.enable()
            await cases[name]()
            profile.disable()
            print(f"\ncProfile, {name}: functions by own time (cProfile slows every call)")
            stats = pstats.Stats(profile)
            stats.sort_stats("tottime").print_stats(14)
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life

    try:
        import uvloop

        uvloop.run(main())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the server under load ---------------------------------------------------------


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (name, int(fields[11]) + int(fields[12]))
    return out


def worker_pid(pid: int) -> int:
    """The process that answers: the first worker of a supervisor, or ``pid`` itself."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


@contextmanager
def target_server(tmp: Path, target: str) -> Iterator[tuple[servers.Server, dict[str, str], str]]:
    """The server for ``target``, the wrk options and the path to load."""
    secret = secrets.token_hex(32)
    data = tmp / "data"
    servers.seed_demo(data, secret)
    if target == "bare":
        env = dict(os.environ)
        with servers.asgi(tmp, "acauth", "bench.baselines.bare:app", env, direct=STATE) as srv:
            yield srv, {"token": "x"}, STATE
        return
    options: dict[str, str] = {}
    path = STATE
    if target == "uncached":
        options = {"tokens": str(write_lines(tmp / "many.txt", mint(data, secret, 20_000)))}
    elif target == "renewals":
        # Two pools: the measured run and py-spy's each renew tokens never renewed before.
        pools = [write_lines(tmp / f"renew{i}.txt", mint(data, secret, 50_000)) for i in (0, 1)]
        path = "/ac/openapi/v2/tokens/next"
        options = {"method": "POST", "path": path, "tokens": str(pools[0]), "expect": "ok"}
        options["second"] = str(pools[1])
    with servers.acauth(tmp, secret, data) as srv:
        if not options:
            options = {"token": login_token(srv.url)}
        yield srv, options, path


def server(target: str, seconds: int, py_spy: str | None) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="acauth-profile-") as tmp_s,
        target_server(Path(tmp_s), target) as (srv, options, path),
    ):
        pid = worker_pid(srv.pid)
        url = f"{srv.url}{path}"
        conns = 16 if target == "renewals" else 32
        storm = None
        if target == "storm":
            storm = start_wrk(
                f"{srv.url}/ac/openapi/v2/tokens",
                seconds=2 * seconds + 10,
                conns=16,
                method="POST",
                path="/ac/openapi/v2/tokens",
                login="1",
                expect="ok",
            )
        if target != "renewals":  # a renewal pool is used once
            wrk(url, seconds=2, conns=conns, **options)
        before = thread_ticks(pid)
        result = wrk(url, seconds=seconds, conns=conns, **options)
        after = thread_ticks(pid)
        hz = os.sysconf("SC_CLK_TCK")
        print(
            f"{target}: {result['rps']:,.0f} req/s, p99 {result['p99_us'] / 1000:.2f} ms, "
            f"{result['bad'] + result['errors']} wrong answers"
        )
        per: dict[str, float] = collections.defaultdict(float)
        for tid, (name, ticks) in after.items():
            used = (ticks - before.get(tid, (name, 0))[1]) / hz
            per[f"{name}{' (main)' if tid == pid else ''}"] += used
        per["all"] = sum(per.values())
        print(f"{'worker thread':28s} share of a core  µs per request")
        for name, used in sorted(per.items(), key=lambda x: -x[1]):
            if used:
                share = f"{used / seconds * 100:.0f} %"
                print(f"{name:28s} {share:>15s}  {used * 1e6 / result['requests']:14.1f}")
        if py_spy:
            if "second" in options:
                options["tokens"] = options["second"]
            spied = start_wrk(url, seconds=seconds + 2, conns=conns, **options)
            time.sleep(1)
            raw = Path(tmp_s) / "raw.txt"
            record = [py_spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250"]
            # Renewals wait on SQLite with the GIL released: every active thread counts.
            record += [] if target == "renewals" else ["--gil"]
            record += ["--native", "--nolineno", "--threads", "-f", "raw", "-o", str(raw)]
            subprocess.run(record, capture_output=True, check=True)
            wrk_result(spied, seconds + 2)
            summarise_samples(raw)
        if storm is not None:
            storm.terminate()
            storm.communicate()


def summarise_samples(raw: Path, top: int = 22) -> None:
    """py-spy's raw stacks of the main thread: own and inclusive share, by function."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = [re.sub(r"0x[0-9a-f]+ ", "", f) for f in stack.split(";")]
        if not frames[0].endswith("MainThread"):
            continue  # the pools' threads: the event loop's is the one measured
        frames = frames[1:]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"\npy-spy: {total} samples of the main thread; own share (inclusive share)")
    for frame, n in own.most_common(top):
        print(f"{n / total * 100:5.1f} % ({inclusive[frame] / total * 100:5.1f} %)  {frame[:110]}")
    ours = [(f, n) for f, n in inclusive.items() if "acauth/" in f or "bare.py" in f]
    print("\nacauth's functions, inclusive share")
    for frame, n in sorted(ours, key=lambda x: -x[1])[:top]:
        print(f"{n / total * 100:5.1f} %  {frame[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    inp = sub.add_parser("inprocess")
    inp.add_argument("-n", type=int, default=100_000)
    srv = sub.add_parser("server")
    srv.add_argument("target", choices=("state", "uncached", "bare", "renewals", "storm"))
    srv.add_argument("--seconds", type=int, default=8)
    srv.add_argument("--py-spy", default=shutil.which("py-spy"))
    args = parser.parse_args()
    if args.what == "inprocess":
        inprocess(args.n)
    else:
        servers.ensure_wrk()
        server(args.target, args.seconds, args.py_spy)


if __name__ == "__main__":
    main()
