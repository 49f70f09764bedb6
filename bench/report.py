"""The benchmark's report: results.json, results.md and the charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.servers import log

LABELS = {
    "nginx": "nginx return 200",
    "bare_direct": "bare direct, acauth's server",
    "bare_direct_distinct": "bare direct, 20k tokens sent",
    "bare_acauth": "bare ASGI, acauth's server",
    "bare_rsgi": "bare RSGI, granian",
    "bare_granian": "bare ASGI, granian",
    "bare_uvicorn": "bare ASGI, uvicorn",
    "acauth_state": "acauth",
    "acauth_state_uncached": "acauth, 20k tokens",
    "acauth_granian": "acauth on granian",
    "acauth_uvicorn": "acauth on uvicorn",
    "fastapi": "FastAPI+PyJWT",
}
HALF_RATE = {
    "idle": "acauth, idle",
    "login_storm": "acauth, during a login storm",
    "bare_direct": "bare direct handler, acauth's server (same load)",
    "nginx": "nginx (same load)",
}
COLOURS = {
    "nginx": "#555",
    "bare_direct": "#666",
    "bare_acauth": "#888",
    "bare_rsgi": "#777",
    "bare_granian": "#999",
    "bare_uvicorn": "#bbb",
    "fastapi": "#c66",
}

Row = tuple[str, str, float | None, str, bool | None]


def at_least(value: float, bound: float) -> tuple[str, bool]:
    return f">= {bound:,g}", value >= bound


def at_most(value: float, bound: float) -> tuple[str, bool]:
    return f"<= {bound:,g}", value <= bound


def target_rows(results: dict[str, Any]) -> list[Row]:
    t = results["throughput"]
    lat = results["latency"]
    ov = results["offline_verify"]
    ren = results["renewals"]
    w = results["workers"]
    mem = results["memory"][-1]
    s = t["acauth_state"]["rps"]

    def vs(name: str) -> str:
        return f"{s:,.0f} vs {t[name]['rps']:,.0f} req/s"

    rows: list[Row] = []

    def add(measure: str, absolute: str, ratio: float | None, check: tuple[str, bool]) -> None:
        rows.append((measure, absolute, ratio, *check))

    ratio = s / t["bare_uvicorn"]["rps"]
    add(
        "tokens/state vs bare ASGI on uvicorn + httptools + uvloop",
        vs("bare_uvicorn"),
        ratio,
        at_least(ratio, 1.5),
    )
    ratio = s / t["bare_direct"]["rps"]
    add(
        "tokens/state vs a bare handler on acauth's own server (direct, no ASGI)",
        vs("bare_direct"),
        ratio,
        at_least(ratio, 0.85),
    )
    ratio = s / t["bare_acauth"]["rps"]
    add(
        "tokens/state vs a bare ASGI app on acauth's own server",
        vs("bare_acauth"),
        ratio,
        at_least(ratio, 0.85),
    )
    ratio = s / t["nginx"]["rps"]
    add(
        "tokens/state vs nginx `return 200`, 1 worker (physical anchor)",
        vs("nginx"),
        ratio,
        at_least(ratio, 0.3),
    )
    unc = t["acauth_state_uncached"]["rps"]
    gen = t["bare_direct_distinct"]["rps"] / t["bare_direct"]["rps"]
    add(
        "tokens/state, 20,000 distinct tokens (uncached) vs one token",
        f"{unc:,.0f} vs {s:,.0f} req/s (the same load on the bare handler: {gen:.2f} ×)",
        unc / s,
        at_least(unc / s, 0.75),
    )
    p99 = lat["idle"]["p99_ms"]
    add(
        "p99 at half the maximum rate",
        f"{p99:.2f} ms at {lat['idle']['rps']:,.0f} req/s (aimed at {lat['target_rps']:,.0f});"
        f" same load: bare direct handler {lat['bare_direct']['p99_ms']:.2f} ms,"
        f" nginx {lat['nginx']['p99_ms']:.2f} ms",
        None,
        at_most(p99, 2),
    )
    ratio = lat["login_storm"]["p99_ms"] / p99
    add(
        "tokens/state p99 during a login storm vs idle",
        f"{lat['login_storm']['p99_ms']:.2f} vs {p99:.2f} ms ({lat['logins_per_s']:.0f} logins/s)",
        ratio,
        at_most(ratio, 2),
    )
    add("renewals, SQLite, one worker", f"{ren['rps']:,.0f} /s", None, at_least(ren["rps"], 1500))
    ratio = s / t["fastapi"]["rps"]
    add("tokens/state vs FastAPI+PyJWT+SQLite on uvicorn", vs("fastapi"), ratio, at_least(ratio, 5))
    add(
        "verify_token vs PyJWT decode, in-process",
        f"{ov['acauth_us']:.1f} vs {ov['pyjwt_us']:.1f} µs",
        ov["ratio"],
        at_least(ov["ratio"], 3),
    )
    add(
        f"server memory, {mem['revocations']:,} live revocations (PSS, all processes)",
        f"{mem['pss_mb']:.0f} MB (worker RSS {mem['worker_rss_mb']:.0f} MB)",
        None,
        at_most(mem["pss_mb"], 150),
    )
    rows.append(
        (
            "--workers 2 vs one worker",
            f"{w['two_workers']['rps']:,.0f} vs {w['one_worker']['rps']:,.0f} req/s",
            w["ratio"],
            "(reported: 2 cores shared with wrk)",
            None,
        )
    )
    return rows


def server_rows(t: dict[str, Any]) -> list[str]:
    """The measured reason for the server: the same app on acauth's, granian, uvicorn."""
    rows = (
        ("bare ASGI app", "bare_acauth", "bare_granian", "bare_uvicorn"),
        ("acauth tokens/state", "acauth_state", "acauth_granian", "acauth_uvicorn"),
    )
    return [
        f"| {what} | {t[a]['rps']:,.0f} | {t[g]['rps']:,.0f} | {t[u]['rps']:,.0f} | "
        f"{t[a]['rps'] / t[g]['rps']:.2f} | {t[a]['rps'] / t[u]['rps']:.2f} | "
        f"{t[a]['p99_ms']:.2f} / {t[g]['p99_ms']:.2f} / {t[u]['p99_ms']:.2f} |"
        for what, a, g, u in rows
    ]


def others(v: dict[str, Any]) -> str:
    """Other programs' CPU during the worst sample, and how many samples were retaken."""
    again = f", {v['retaken']} retaken" if v.get("retaken") else ""
    return f"{v.get('others_cores', 0):.2f}{again}"


def report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    t = results["throughput"]
    lat = results["latency"]
    srv = results["servers"]
    mark = {True: "yes", False: "**no**", None: ""}
    md = [
        "# Benchmark results",
        "",
        f"{results['when']} · {results['machine']} (wrk and the servers share them) · "
        f"{results['runs']} runs of {results['seconds']} s each, medians · wrk 1 thread, "
        f"32 connections, keep-alive · total wall time {results['wall_s'] / 60:.1f} min · "
        f"CPU busy before the start {results['cpu_busy_before']:.0%}, load average "
        f"{results['load'][0]:.1f} at the start, {results['load'][1]:.1f} at the end",
        "",
        f"acauth started by: {srv['acauth_launch']} · granian {srv['granian']} "
        f"({srv['granian_args']}) · httptools {srv['httptools']} · "
        f"uvicorn {srv['uvicorn']} (`{srv['uvicorn_args']}`) · "
        f"{srv['nginx']} · {srv['wrk']}",
        "",
        "| measure | absolute | ratio | target | met |",
        "|---|---|---|---|---|",
        *(
            f"| {m} | {a} | {'' if r is None else f'{r:.2f}'} | {tgt} | {mark[ok]} |"
            for m, a, r, tgt, ok in target_rows(results)
        ),
        "",
        "## The server: acauth's own vs granian vs uvicorn, same app, same run",
        "",
        "| app | acauth's req/s | granian req/s | uvicorn req/s | vs granian | vs uvicorn |"
        " p99 ms (acauth's / granian / uvicorn) |",
        "|---|---|---|---|---|---|---|",
        *server_rows(t),
        "",
        "## Throughput and latency (medians)",
        "",
        "| target | req/s | p50 ms | p90 ms | p99 ms | runs (req/s) | wrong answers | others |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {LABELS.get(k, k)} | {v['rps']:,.0f} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | "
            f"{v['p99_ms']:.2f} | {', '.join(map(str, v['runs']))} | {v['bad']} | {others(v)} |"
            for k, v in t.items()
        ),
        "",
        f"## tokens/state at half the maximum rate ({lat['connections']} connections, "
        "2 ms pause between requests)",
        "",
        "| | req/s | p50 ms | p90 ms | p99 ms | runs (req/s) | wrong answers | others |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {HALF_RATE[k]} | {v['rps']:,.0f} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | "
            f"{v['p99_ms']:.2f} | {', '.join(map(str, v['runs']))} | {v['bad']} | {others(v)} |"
            for k, v in ((k, lat[k]) for k in HALF_RATE)
        ),
        "",
        "*others*: cores used by other programs on the machine during the worst sample;"
        " a throughput or half-rate sample during which they used more than"
        f" {results['others_limit']} core is taken once more (at most"
        f" {results['retakes']} in a run).",
        "",
        f"Logins during the storm: {lat['logins_per_s']:.0f}/s, "
        f"{lat['logins_bad']} wrong answers. Renewals: "
        f"{results['renewals']['bad']} wrong answers.",
        "",
        "## Memory",
        "",
        "| live revocations | PSS, all processes (MB) | RSS, worker (MB) | ready in (s) |",
        "|---|---|---|---|",
        *(
            f"| {r['revocations']:,} | {r['pss_mb']:.0f} | {r['worker_rss_mb']:.0f} | "
            f"{r['startup_s']:.1f} |"
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
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.bar(
        [LABELS.get(n, n) for n in names],
        [t[n]["rps"] for n in names],
        color=[COLOURS.get(n, "#2a6") for n in names],
    )
    ax.set_ylabel("requests/s (median)")
    ax.set_title("tokens/state throughput, side by side (one worker each)")
    for i, n in enumerate(names):
        ax.text(i, t[n]["rps"], f"{t[n]['rps']:,.0f}", ha="center", va="bottom")
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)

    series = {
        **{LABELS.get(k, k): t[k] for k in names},
        "acauth @ half rate": results["latency"]["idle"],
        "acauth @ half rate, login storm": results["latency"]["login_storm"],
        "renewals": results["renewals"],
    }
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.27
    keys = list(series)
    for j, pct in enumerate(("p50_ms", "p90_ms", "p99_ms")):
        ax.bar(
            [i + (j - 1) * width for i in range(len(keys))],
            [series[k][pct] for k in keys],
            width,
            label=pct.replace("_ms", ""),
        )
    ax.set_xticks(range(len(keys)), keys, rotation=25, ha="right")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency percentiles per target (medians)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
