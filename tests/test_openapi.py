"""Schemathesis against /openapi.json: no 5xx, and every answer matches the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from acauth.testing import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    # A high lockout threshold: the fuzzer's wrong passwords should not lock the demo user.
    with LiveServer.start(data_dir, lockout_threshold=10_000) as server:
        yield server


OPERATIONS = [
    "getTokens",
    "getTokensWithKey",
    "renewToken",
    "verifyToken",
    "userInfo",
    "centerInfo",
]


@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_api_conforms(live: LiveServer, operation_id: str) -> None:
    api = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")
    operation = api.find_operation_by_id(operation_id)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    conforms()
