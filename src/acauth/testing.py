"""The pytest plugin of acauth: a real emulator on a free loopback port, per test.

Installed with the package and loaded by pytest in every project that has acauth,
so this module imports nothing heavy: the server comes from the ``server`` extra
and is imported only when a test asks for the ``acauth_server`` fixture.
``LiveServer`` and ``TEST_SECRET`` are importable from here as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from acauth.server.live import TEST_SECRET, DemoCredentials, LiveServer

__all__ = ["TEST_SECRET", "DemoCredentials", "LiveServer", "acauth_server"]


def __getattr__(name: str) -> Any:
    if name in ("LiveServer", "TEST_SECRET", "DemoCredentials"):
        from acauth.server import live

        return getattr(live, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def acauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real acauth emulator on a free loopback port, with the demo tenant.

    ``base_url``, ``credentials``, ``clock.advance(seconds)``, ``faults.add_fault(...)``,
    ``requests()``, ``journal(path, code=…)``, ``snapshot()`` / ``restore(state)``,
    ``scenario(name, **params)`` (or a step, a list of steps, a file's ``Path``).
    """
    try:
        from acauth.server.live import LiveServer
    except ModuleNotFoundError as exc:
        pytest.fail(
            f"the acauth_server fixture needs the server extra: pip install 'acauth[server]'"
            f" ({exc.name} is missing)",
            pytrace=False,
        )
    data_dir = tmp_path_factory.mktemp("acauth")
    with LiveServer.start(data_dir, emulator=True, login_rate_per_s=0) as server:
        yield server
