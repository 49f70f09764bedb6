"""The acauth benchmark suite: ``python -m bench.run`` (see bench/README.md).

Every figure is measured side by side with its baseline in the same run, runs
are interleaved, and medians are reported with their ratio to the baseline.
Servers listen on 127.0.0.1 only; every load is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "lua" / "check.lua"
STATE = "/ac/openapi/v2/tokens/state"
DEMO = {"user": "demo", "password": "demo-password", "orgId": "6048ce7ba15c2af2e8cec12991ec13cf"}
PY = sys.executable


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def process(
    args: list[str], env: dict[str, str], probe: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_http(probe)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def acauth_env(secret: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACAUTH_")}
    # The load comes from one address, as fast as it can: no per-address login limit,
    # and a hash queue deep enough that a login storm is queued rather than refused.
    env.update(ACAUTH_SECRET=secret, ACAUTH_LOGIN_RATE_PER_S="0", ACAUTH_HASH_QUEUE="4096", **extra)
    return env


@contextmanager
def acauth(tmp: Path, secret: str, data_dir: Path, *extra: str) -> Iterator[str]:
    port = free_port()
    args = [
        PY,
        "-m",
        "acauth",
        "serve",
        "--demo",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        *extra,
    ]
    base = f"http://127.0.0.1:{port}"
    with process(args, acauth_env(secret), f"{base}/healthz", tmp / "acauth.log"):
        yield base


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- load ------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing: installing it from Debian's packages")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True
    )
    found = shutil.which("wrk")
    if not found:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed (apt-get install wrk)")
    return found


def start_wrk(url: str, *, seconds: float, conns: int = 32, **env: str) -> subprocess.Popen[str]:
    """wrk with ``check.lua`` in the background; ``env`` becomes ``BENCH_*`` variables."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--latency", "-s", str(LUA), url]
    full_env = {**os.environ, **{f"BENCH_{k.upper()}": v for k, v in env.items()}}
    return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, text=True)


def wrk(url: str, *, seconds: float, conns: int = 32, **env: str) -> dict[str, Any]:
    return wrk_result(start_wrk(url, seconds=seconds, conns=conns, **env), seconds)


def wrk_result(proc: subprocess.Popen[str], seconds: float) -> dict[str, Any]:
    out = proc.communicate(timeout=seconds + 60)[0]
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# -- fixtures --------------------------------------------------------------------


def login_token(base: str) -> str:
    data = httpx.post(f"{base}/ac/openapi/v2/tokens", headers=DEMO, timeout=30).json()["data"]
    return str(data[-1]["token"])


def mint(data_dir: Path, secret: str, count: int, *, revoked: bool = False) -> list[str]:
    """Issue ``count`` demo platform tokens straight into the store (fast, for load)."""
    from acauth import tokens as codec
    from acauth.models import TokenRecord
    from acauth.store import Store

    now = int(time.time() * 1000)
    records = [
        TokenRecord(
            jti=codec.new_jti(),
            user_id=11655048541,
            user_name="demo",
            cluster_id="0",
            compute_user="demo",
            account_status="Normal",
            role="1",
            invoker=DEMO["orgId"],
            issued_ms=now,
            expire_ms=now + 86_400_000,
            revoked_ms=now if revoked else None,
        )
        for _ in range(count)
    ]

    async def store_them() -> None:
        store = await Store.open(f"sqlite:///{data_dir / 'acauth.db'}")
        try:
            for i in range(0, len(records), 5000):
                await store.tokens.add(records[i : i + 5000])
        finally:
            await store.close()

    asyncio.run(store_them())
    key = secret.encode()
    return [
        codec.encode(
            codec.Claims(
                r.compute_user,
                r.account_status,
                r.role,
                r.expire_ms,
                r.cluster_id,
                r.invoker,
                r.user_name,
                str(r.user_id),
                r.jti,
            ),
            key,
        )
        for r in records
    ]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def seed_revocations(db: Path, count: int) -> None:
    """``count`` revoked, unexpired tokens, inserted with plain SQL (1M in seconds)."""
    now = int(time.time() * 1000)
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO issued_tokens (jti, user_id, user_name, cluster_id, compute_user,"
            " account_status, role, invoker, issued_ms, expire_ms, revoked_ms)"
            " VALUES (?, 11655048541, 'demo', '0', 'demo', 'Normal', '1', 'x', ?, ?, ?)",
            ((secrets.token_urlsafe(16), now, now + 86_400_000, now) for _ in range(count)),
        )


# -- scenarios -------------------------------------------------------------------


def throughput(tmp: Path, secret: str, data: Path, runs: int, seconds: float) -> dict[str, Any]:
    log("throughput: acauth tokens/state vs bare ASGI vs FastAPI+PyJWT+SQLite")
    many = write_lines(tmp / "many.txt", mint(data, secret, 20_000))
    revdb = tmp / "revoked.db"
    with sqlite3.connect(revdb) as conn:
        conn.execute("CREATE TABLE revoked (jti TEXT PRIMARY KEY)")
        conn.executemany(
            "INSERT INTO revoked VALUES (?)", ((secrets.token_urlsafe(16),) for _ in range(10_000))
        )
    bare_port, fast_port = free_port(), free_port()
    uvicorn = [
        PY,
        "-m",
        "uvicorn",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--host",
        "127.0.0.1",
    ]
    env = {**os.environ, "BENCH_SECRET": secret, "BENCH_REVOCATIONS_DB": str(revdb)}
    samples: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("bare", "acauth_state", "acauth_state_uncached", "fastapi")
    }
    with (
        acauth(tmp, secret, data) as base,
        process(
            [*uvicorn, "--port", str(bare_port), "bench.baselines.bare:app"],
            env,
            f"http://127.0.0.1:{bare_port}/",
            tmp / "bare.log",
        ),
        process(
            [*uvicorn, "--port", str(fast_port), "bench.baselines.fastapi_app:app"],
            env,
            f"http://127.0.0.1:{fast_port}/docs",
            tmp / "fastapi.log",
        ),
    ):
        token = login_token(base)
        targets = {
            "bare": (f"http://127.0.0.1:{bare_port}{STATE}", {"token": token}),
            "acauth_state": (f"{base}{STATE}", {"token": token}),
            "acauth_state_uncached": (f"{base}{STATE}", {"tokens": str(many)}),
            "fastapi": (f"http://127.0.0.1:{fast_port}{STATE}", {"token": token}),
        }
        for url, env_ in targets.values():  # warm-up
            wrk(url, seconds=3, **env_)
        for run in range(runs):
            for name, (url, env_) in targets.items():
                samples[name].append(wrk(url, seconds=seconds, **env_))
            log(
                f"  run {run + 1}: "
                + ", ".join(f"{k} {v[-1]['rps']:.0f}/s" for k, v in samples.items())
            )
    return summarise(samples)


def summarise(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        name: {
            "rps": median([s["rps"] for s in runs]),
            "p50_ms": median([s["p50_us"] for s in runs]) / 1000,
            "p90_ms": median([s["p90_us"] for s in runs]) / 1000,
            "p99_ms": median([s["p99_us"] for s in runs]) / 1000,
            "bad": sum(s["bad"] + s["errors"] for s in runs),
            "runs": [round(s["rps"]) for s in runs],
        }
        for name, runs in samples.items()
    }


def latency_and_storm(
    tmp: Path, secret: str, data: Path, max_rps: float, runs: int, seconds: float
) -> dict[str, Any]:
    """p99 of tokens/state at half its maximum rate, idle and during a login storm."""
    log("latency at half the maximum rate, idle and during a login storm")
    target = max_rps / 2
    delay_ms = 2
    samples: dict[str, list[dict[str, Any]]] = {"idle": [], "login_storm": []}
    storms: list[dict[str, Any]] = []
    with acauth(tmp, secret, data) as base:
        token = login_token(base)
        # Closed-loop connections with a pause: rate ~ conns / (pause + latency).
        conns = max(1, round(target * (delay_ms / 1000 + 0.0004)))

        def half_rate() -> dict[str, Any]:
            return wrk(
                f"{base}{STATE}", seconds=seconds, conns=conns, token=token, delay_ms=str(delay_ms)
            )

        for run in range(runs):
            samples["idle"].append(half_rate())
            storm = start_wrk(
                f"{base}/ac/openapi/v2/tokens",
                seconds=seconds + 2,
                conns=16,
                method="POST",
                path="/ac/openapi/v2/tokens",
                login="1",
                expect="ok",
            )
            time.sleep(1)
            samples["login_storm"].append(half_rate())
            storm_result = wrk_result(storm, seconds + 2)
            storms.append(storm_result)
            log(
                f"  run {run + 1}: idle p99 {samples['idle'][-1]['p99_us'] / 1000:.2f} ms at "
                f"{samples['idle'][-1]['rps']:.0f}/s; storm p99 "
                f"{samples['login_storm'][-1]['p99_us'] / 1000:.2f} ms "
                f"({storm_result['rps']:.0f} logins/s)"
            )
    out = summarise(samples)
    out["target_rps"] = target
    out["connections"] = conns
    out["logins_per_s"] = median([s["rps"] for s in storms])
    return out


def renewals(tmp: Path, secret: str, data: Path, runs: int, seconds: float) -> dict[str, Any]:
    log("renewals per second (SQLite, one worker), each on a token never renewed before")
    per_run = int(4000 * seconds)
    samples: dict[str, list[dict[str, Any]]] = {"renewals": []}
    pools = [write_lines(tmp / f"renew{i}.txt", mint(data, secret, per_run)) for i in range(runs)]
    with acauth(tmp, secret, data) as base:
        for run in range(runs):
            r = wrk(
                f"{base}/ac/openapi/v2/tokens/next",
                seconds=seconds,
                conns=16,
                method="POST",
                path="/ac/openapi/v2/tokens/next",
                tokens=str(pools[run]),
                expect="ok",
            )
            if r["requests"] > per_run:
                r["bad"] += r["requests"] - per_run  # repeats are not fresh renewals
            samples["renewals"].append(r)
            log(f"  run {run + 1}: {r['rps']:.0f} renewals/s")
    return summarise(samples)["renewals"]


def offline_verify(runs: int) -> dict[str, Any]:
    log("offline verification: acauth.verify_token vs PyJWT decode, same checks")
    import jwt

    from acauth import tokens as codec
    from acauth import verify_token

    secret = secrets.token_hex(32)
    token = codec.encode(
        codec.Claims(
            "demo",
            "Normal",
            "1",
            4_000_000_000_000,
            "0",
            DEMO["orgId"],
            "demo",
            "11655048541",
            codec.new_jti(),
        ),
        secret.encode(),
    )

    def reference() -> None:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
        if int(claims["expireTime"]) <= time.time() * 1000:
            raise ValueError("expired")

    ours_s, ref_s = [], []
    n = 50_000
    for _ in range(runs):
        ours_s.append(timeit.timeit(lambda: verify_token(token, secret), number=n) / n)
        ref_s.append(timeit.timeit(reference, number=n) / n)
    ours, ref = median(ours_s), median(ref_s)
    return {
        "acauth_us": ours * 1e6,
        "pyjwt_us": ref * 1e6,
        "acauth_per_s": 1 / ours,
        "pyjwt_per_s": 1 / ref,
        "ratio": ref / ours,
    }


def memory(tmp: Path, secret: str, sizes: list[int]) -> list[dict[str, Any]]:
    log("server RSS with N live revocations")
    rows = []
    for n in sizes:
        data = tmp / f"mem{n}"
        with acauth(tmp, secret, data):
            pass  # creates and seeds the database
        seed_revocations(data / "acauth.db", n)
        port = free_port()
        # The demo's store: only --demo serves it.
        args = [PY, "-m", "acauth", "serve", "--demo", "--data-dir", str(data), "--port", str(port)]
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        with process(args, acauth_env(secret), f"{base}/healthz", tmp / "mem.log") as proc:
            load_s = time.monotonic() - started
            token = login_token(base)
            wrk(f"{base}{STATE}", seconds=2, token=token)
            rows.append({"revocations": n, "rss_mb": rss_mb(proc.pid), "startup_s": load_s})
        log(f"  {n:>9,} revocations: {rows[-1]['rss_mb']:.0f} MB, ready in {load_s:.1f} s")
    return rows


def workers(tmp: Path, secret: str, data: Path, runs: int, seconds: float) -> dict[str, Any]:
    log("tokens/state with --workers 2 vs one worker")
    samples: dict[str, list[dict[str, Any]]] = {"one_worker": [], "two_workers": []}
    with acauth(tmp, secret, data) as one, acauth(tmp, secret, data, "--workers", "2") as two:
        token = login_token(one)
        for url in (one, two):
            wrk(f"{url}{STATE}", seconds=3, token=token)
        for _ in range(runs):
            samples["one_worker"].append(wrk(f"{one}{STATE}", seconds=seconds, token=token))
            samples["two_workers"].append(wrk(f"{two}{STATE}", seconds=seconds, token=token))
    out = summarise(samples)
    out["ratio"] = out["two_workers"]["rps"] / out["one_worker"]["rps"]
    return out


# -- report ----------------------------------------------------------------------


def report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    t = results["throughput"]
    lat = results["latency"]
    ov = results["offline_verify"]
    ren = results["renewals"]
    w = results["workers"]
    s = t["acauth_state"]
    rows = [
        (
            "tokens/state vs bare ASGI (a)",
            f"{s['rps']:,.0f} vs {t['bare']['rps']:,.0f} req/s",
            s["rps"] / t["bare"]["rps"],
            ">= 0.75",
        ),
        (
            "tokens/state vs FastAPI+PyJWT+SQLite (b)",
            f"{s['rps']:,.0f} vs {t['fastapi']['rps']:,.0f} req/s",
            s["rps"] / t["fastapi"]["rps"],
            ">= 5",
        ),
        (
            "tokens/state, 20,000 distinct tokens (uncached) vs (a)",
            f"{t['acauth_state_uncached']['rps']:,.0f} req/s",
            t["acauth_state_uncached"]["rps"] / t["bare"]["rps"],
            "(reported)",
        ),
        (
            "p99 at half the maximum rate",
            f"{lat['idle']['p99_ms']:.2f} ms at {lat['idle']['rps']:,.0f} req/s",
            None,
            "<= 5 ms",
        ),
        (
            "verify_token vs PyJWT decode (c)",
            f"{ov['acauth_us']:.1f} vs {ov['pyjwt_us']:.1f} µs",
            ov["ratio"],
            ">= 3",
        ),
        ("renewals, SQLite, one worker", f"{ren['rps']:,.0f} /s", None, ">= 1,000"),
        (
            "tokens/state p99 during a login storm vs idle",
            f"{lat['login_storm']['p99_ms']:.2f} vs {lat['idle']['p99_ms']:.2f} ms "
            f"({lat['logins_per_s']:.0f} logins/s)",
            lat["login_storm"]["p99_ms"] / lat["idle"]["p99_ms"],
            "<= 2",
        ),
        (
            "--workers 2 vs one worker",
            f"{w['two_workers']['rps']:,.0f} vs {w['one_worker']['rps']:,.0f} req/s",
            w["ratio"],
            ">= 1.6",
        ),
    ]
    md = [
        "# Benchmark results",
        "",
        f"{results['when']} · {results['machine']} · {results['runs']} runs of "
        f"{results['seconds']} s each, medians · wrk 1 thread, 32 connections, keep-alive",
        "",
        "| measure | absolute | ratio | target |",
        "|---|---|---|---|",
        *(f"| {m} | {a} | {'' if r is None else f'{r:.2f}'} | {tgt} |" for m, a, r, tgt in rows),
        "",
        "## Throughput and latency (medians)",
        "",
        "| target | req/s | p50 ms | p90 ms | p99 ms | runs (req/s) | wrong answers |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {k} | {v['rps']:,.0f} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | "
            f"{v['p99_ms']:.2f} | {', '.join(map(str, v['runs']))} | {v['bad']} |"
            for k, v in t.items()
        ),
        "",
        "## Memory",
        "",
        "| live revocations | server RSS (MB) | ready in (s) |",
        "|---|---|---|",
        *(
            f"| {r['revocations']:,} | {r['rss_mb']:.0f} | {r['startup_s']:.1f} |"
            for r in results["memory"]
        ),
        "",
    ]
    (out / "results.md").write_text("\n".join(md))
    charts(results, out)


def charts(results: dict[str, Any], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no charts (pip install -e '.[bench]')")
        return
    t = results["throughput"]
    names = list(t)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, [t[n]["rps"] for n in names], color=["#999", "#2a6", "#7c9", "#c66"])
    ax.set_ylabel("requests/s (median)")
    ax.set_title("tokens/state throughput, side by side")
    for i, n in enumerate(names):
        ax.text(i, t[n]["rps"], f"{t[n]['rps']:,.0f}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)

    series = {
        **{k: t[k] for k in names},
        "state @ half rate": results["latency"]["idle"],
        "state @ half rate, login storm": results["latency"]["login_storm"],
        "renewals": results["renewals"],
    }
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.27
    keys = list(series)
    for j, pct in enumerate(("p50_ms", "p90_ms", "p99_ms")):
        ax.bar(
            [i + (j - 1) * width for i in range(len(keys))],
            [series[k][pct] for k in keys],
            width,
            label=pct.replace("_ms", ""),
        )
    ax.set_xticks(range(len(keys)), keys, rotation=20, ha="right")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency percentiles per endpoint (medians)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--memory-sizes", default="0,10000,100000,1000000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    ensure_wrk()
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="acauth-bench-") as tmp_s:
        tmp = Path(tmp_s)
        data = tmp / "data"
        with acauth(tmp, secret, data):
            pass  # migrate and seed once
        results: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
            "runs": args.runs,
            "seconds": args.seconds,
        }
        results["throughput"] = throughput(tmp, secret, data, args.runs, args.seconds)
        results["latency"] = latency_and_storm(
            tmp, secret, data, results["throughput"]["acauth_state"]["rps"], args.runs, args.seconds
        )
        results["renewals"] = renewals(tmp, secret, data, args.runs, args.seconds)
        results["offline_verify"] = offline_verify(args.runs)
        results["workers"] = workers(tmp, secret, data, args.runs, args.seconds)
        results["memory"] = memory(tmp, secret, [int(x) for x in args.memory_sizes.split(",")])
    report(results, args.out)
    log(f"written: {args.out}/results.md, results.json, throughput.png, latency.png")


if __name__ == "__main__":
    main()
