"""Fixtures: servers started in-process, an HTTP client, a database URL per backend.

Plain helpers (``login``, ``call``, ``admin``, ``serve``…) are in ``helpers.py``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from acauth import logs
from acauth.testing import LiveServer

pytest_plugins = ["pg"]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start a real server on loopback with the demo tenant; settings may be overridden."""
    with ExitStack() as stack:
        count = 0

        def start(**overrides: Any) -> LiveServer:
            nonlocal count
            count += 1
            data_dir = overrides.pop("data_dir", tmp_path / f"srv{count}")
            return stack.enter_context(LiveServer.start(data_dir, **overrides))

        yield start


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """A real server with the demo tenant and the default settings."""
    return make_server()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of :func:`server`."""
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url.replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The process's log lines, as JSON, in a buffer (the configuration is undone after)."""
    buffer = io.StringIO()
    logs.configure(json=True, stream=buffer)
    yield buffer
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    logging.getLogger().setLevel(logging.WARNING)
