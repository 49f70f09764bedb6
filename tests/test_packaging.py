"""Two kinds of install: the light SDK (``pip install acauth``) and the ``server`` extra.

The light install is checked on its import graph: a child interpreter that
cannot import any package of the ``server`` extra (a meta-path blocker), as on a
machine where only ``pip install acauth`` ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import requires

import pytest

from acauth.cli.output import SERVER_PACKAGES

BLOCKER = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    BLOCKED = set(sys.argv.pop(1).split(","))

    class Blocker(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def light_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where no package of the server extra can be imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACAUTH_")}
    env["ACAUTH_CONFIG_DIR"] = os.devnull + "-acauth-none"
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code), ",".join(SERVER_PACKAGES), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_server_packages_are_only_in_the_server_extra() -> None:
    base = [r for r in requires("acauth") or [] if "extra ==" not in r]
    names = {re.split(r"[\[<>=;! ]", r, maxsplit=1)[0].lower() for r in base}
    heavy = {"starlette", "httptools", "uvloop", "sqlalchemy", "asyncpg", "alembic", "argon2-cffi"}
    heavy |= {"cryptography", "prometheus-client", "structlog", "pydantic-settings", "pyjwt"}
    assert names and not names & heavy, names & heavy


def test_the_sdk_imports_nothing_of_the_server() -> None:
    result = light_python(
        """
        import acauth, acauth.client, acauth.middleware, acauth.verify, acauth.signing
        from acauth import Client, AsyncClient, TokenManager, AsyncTokenManager, verify_token
        from acauth.middleware import TokenMiddleware, WSGITokenMiddleware, RemoteVerifier
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["token", "--help"], ["user", "--help"]])
def test_help_works_without_the_server_extra(argv: list[str]) -> None:
    result = light_python("from acauth.cli import main; main()", *argv)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.parametrize(
    "argv", [["serve"], ["user", "list"], ["audit"]], ids=["serve", "user-list", "audit"]
)
def test_server_commands_without_the_extra_say_what_to_install(argv: list[str]) -> None:
    result = light_python("from acauth.cli import main; main()", *argv)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'acauth[server]'" in lines[0], result.stderr


def test_client_commands_run_without_the_server_extra() -> None:
    result = light_python("from acauth.cli import main; main()", "whoami")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: not logged in: run acauth login first"


def test_help_imports_only_what_it_shows() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom acauth.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(eval(result.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own output
    assert not loaded & SERVER_PACKAGES, loaded & SERVER_PACKAGES
