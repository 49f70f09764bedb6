"""The servers the benchmark starts, each on 127.0.0.1 with one worker unless said.

acauth is started by :func:`acauth`; :data:`ACAUTH_LAUNCH` says how (its HTTP
server run directly on the ASGI factory, or ``acauth serve``). The baselines
are started by the same helpers with the same server options.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FACTORY = "acauth.server.app:app_from_env"
BODY = '{"code":"0","msg":"success","data":"token is valid"}'

# How acauth is started: "serve" runs `acauth serve`; "granian" runs the ASGI factory
# under granian with the same options (bench/granian_app.py), with ACAUTH_* settings.
ACAUTH_LAUNCH = "serve"

# granian with the limits acauth holds to (bench/granian_app.py).
GRANIAN = [PY, "-m", "bench.granian_app"]
# acauth's own HTTP server with an app of the benchmark's (bench/acauth_http_app.py).
ACAUTH_HTTP = [PY, "-m", "bench.acauth_http_app"]
UVICORN = [
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
]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with status {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def process(args: list[str], env: dict[str, str], probe: str, log_path: Path) -> Iterator[int]:
    """Run ``args`` until the block ends; yields the pid once ``probe`` answers."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_http(probe, proc)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks of the process and of its reaped children)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(stat.parent.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return out


def _tree(procs: dict[int, tuple[int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    mine, todo = set(), [root]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo.extend(children.get(pid, []))
    return mine


class Others:
    """CPU used by processes outside this benchmark while a load runs, in cores.

    Another program on the machine takes cores from wrk and the server: a sample
    taken meanwhile is reported, and the throughput scenario takes it again.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ticks = self._ticks()

    @staticmethod
    def _ticks() -> dict[int, int]:
        procs = _processes()
        mine = _tree(procs, os.getpid())
        return {pid: ticks for pid, (_, ticks) in procs.items() if pid not in mine}

    def cores(self) -> float:
        now = self._ticks()
        used = sum(max(0, t - self.ticks.get(pid, t)) for pid, t in now.items())
        elapsed = max(1e-3, time.monotonic() - self.started)
        return used / os.sysconf("SC_CLK_TCK") / elapsed


def memory_mb(pid: int) -> tuple[float, float]:
    """Memory of ``pid`` with all its descendants (MB), and the RSS of the largest one.

    The total adds proportional set sizes (PSS): pages a forked worker shares with
    its parent are counted once, not once per process as RSS would.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    pss, rss, todo = [], [], [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        pss += _kb(Path(f"/proc/{p}/smaps_rollup"), "Pss:")
        rss += _kb(Path(f"/proc/{p}/status"), "VmRSS:")
    return sum(pss) / 1024, max(rss, default=float("nan")) / 1024


def _kb(path: Path, field: str) -> list[int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [int(line.split()[1]) for line in lines if line.startswith(field)]


# -- tools from Debian's packages ------------------------------------------------


def ensure_tool(name: str, package: str, also: tuple[str, ...] = ()) -> str:
    """The path of ``name``, installing ``package`` with apt-get if it is missing."""

    def found() -> str | None:
        return shutil.which(name) or next((p for p in also if Path(p).exists()), None)

    path = found()
    if path:
        return path
    log(f"{name} is missing: installing it from Debian's packages")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    install = [*sudo, "apt-get", "install", "-y", "-q", package]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(install, check=True)
    path = found()
    if not path:
        raise SystemExit(f"{name} could not be installed (apt-get install {package})")
    return path


def ensure_wrk() -> str:
    return ensure_tool("wrk", "wrk")


def ensure_nginx() -> str:
    return ensure_tool("nginx", "nginx", also=("/usr/sbin/nginx",))


# -- the servers -----------------------------------------------------------------


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      default_type application/json;
      return 200 '{body}';
    }}
  }}
}}
"""


@contextmanager
def nginx(tmp: Path) -> Iterator[Server]:
    """nginx, one worker, answering every GET with tokens/state's valid answer."""
    port = free_port()
    home = tmp / "nginx"
    home.mkdir(exist_ok=True)
    conf = home / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=home, port=port, body=BODY))
    args = [ensure_nginx(), "-p", str(home), "-c", str(conf)]
    url = f"http://127.0.0.1:{port}"
    with process(args, dict(os.environ), f"{url}/", tmp / "nginx.log") as pid:
        yield Server(url, pid)


@contextmanager
def asgi(
    tmp: Path,
    server: str,
    target: str,
    env: dict[str, str],
    probe: str = "/",
    workers: int = 1,
    interface: str = "asgi",
    direct: str | None = None,
) -> Iterator[Server]:
    """The app ``target`` (``module:attr``) on ``server``: "acauth" (acauth's own HTTP
    server), "granian" or "uvicorn".

    ``interface``: granian's, "asgi" or "rsgi". ``direct``: on acauth's server, the
    path answered by the module's ``direct`` handler, without ASGI.
    """
    port = free_port()
    common = ["--port", str(port), "--workers", str(workers)]
    factory = ["--factory"] if target == FACTORY else []
    if server == "acauth":
        args = [*ACAUTH_HTTP, target, *common, *(["--direct", direct] if direct else [])]
    elif server == "granian":
        args = [*GRANIAN, target, "--interface", interface, *common, *factory]
    else:
        args = [*UVICORN, "--host", "127.0.0.1", *common, *factory, target]
    url = f"http://127.0.0.1:{port}"
    name = target.rsplit(".", 1)[-1].replace(":", "-")
    with process(args, env, f"{url}{probe}", tmp / f"{server}-{name}.log") as pid:
        yield Server(url, pid)


def acauth_env(secret: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACAUTH_")}
    # The load comes from one address, as fast as it can: no per-address login limit,
    # and a hash queue deep enough that a login storm is queued rather than refused.
    env.update(
        ACAUTH_SECRET=secret,
        ACAUTH_DATA_DIR=str(data_dir),
        ACAUTH_DEMO="1",
        ACAUTH_LOGIN_RATE_PER_S="0",
        ACAUTH_HASH_QUEUE="4096",
        **extra,
    )
    return env


@contextmanager
def acauth(
    tmp: Path, secret: str, data_dir: Path, *, workers: int = 1, server: str | None = None
) -> Iterator[Server]:
    """acauth on the demo store in ``data_dir``.

    ``server`` None: as shipped (:data:`ACAUTH_LAUNCH`); "uvicorn" or "granian":
    the ASGI factory on that server directly.
    """
    seed_demo(data_dir, secret)
    env = acauth_env(secret, data_dir)
    server = server or ACAUTH_LAUNCH
    if server != "serve":
        if workers > 1:
            # As `acauth serve` does: each worker writes its metrics there.
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=tmp)
        with asgi(tmp, server, FACTORY, env, "/healthz", workers) as srv:
            yield srv
        return
    port = free_port()
    args = [PY, "-m", "acauth", "serve", "--demo", "--data-dir", str(data_dir), "--port", str(port)]
    args += ["--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    with process(args, env, f"{url}/healthz", tmp / "acauth-serve.log") as pid:
        yield Server(url, pid)


def seed_demo(data_dir: Path, secret: str) -> None:
    """Create, migrate and seed the demo store, as ``acauth serve --demo`` does first."""
    from acauth import demo
    from acauth.clock import SystemClock
    from acauth.logs import configure
    from acauth.service.admin import AdminService
    from acauth.store import Store

    configure(level=logging.WARNING)  # the seeding's audit lines are not the benchmark's
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def seed() -> None:
        store = await Store.open(f"sqlite:///{data_dir / 'acauth.db'}")
        try:
            await demo.seed(AdminService(store, [secret.encode()], SystemClock()))
        finally:
            await store.close()

    asyncio.run(seed())
