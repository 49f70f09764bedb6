"""Operators: the CLI, keys and sessions kept as digests, the lockout, revocation, expiry."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from acauth import demo, passwords
from acauth.cli import app
from acauth.clock import MovableClock
from acauth.errors import (
    AccountLocked,
    AlreadyExists,
    DoesNotExist,
    InvalidParameter,
    OperatorUnauthorized,
)
from acauth.models import AuditQuery
from acauth.passwords import PasswordService
from acauth.service.admin import AdminService
from acauth.service.auth import Policy
from acauth.service.operators import OperatorService
from acauth.store import Store
from acauth.store.emulation import EmulatorQueries
from acauth.testing import TEST_SECRET

PASSWORD = "operator-password-1"


# -- the CLI ------------------------------------------------------------------------


def cli(data_dir: Path, *args: str, password: str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(data_dir), *args],
        env={"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_OPERATOR_PASSWORD": password},
    )
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    cli(tmp_path / "data", "init")
    return tmp_path / "data"


def services(data_dir: Path) -> tuple[Store, OperatorService]:
    """What a running server would hold: an operator service on the same store."""
    store = asyncio.run(Store.open(f"sqlite:///{data_dir / 'acauth.db'}", create=False))
    return store, OperatorService(store, MovableClock(), PasswordService(1))


def test_operator_commands_add_list_disable_enable_passwd_delete(data_dir: Path) -> None:
    cli(data_dir, "operator", "add", "ops", password=PASSWORD)
    listed = orjson.loads(cli(data_dir, "operator", "list", "--json").stdout)
    assert [(o["name"], o["enabled"], o["lastLogin"]) for o in listed] == [("ops", True, None)]

    cli(data_dir, "operator", "disable", "ops")
    assert orjson.loads(cli(data_dir, "operator", "list", "--json").stdout)[0]["enabled"] is False
    cli(data_dir, "operator", "enable", "ops")
    cli(data_dir, "operator", "passwd", "ops", password="another-password")

    store, ops = services(data_dir)
    try:
        with pytest.raises(OperatorUnauthorized):
            asyncio.run(ops.sign_in("ops", PASSWORD, "127.0.0.1"))
        assert asyncio.run(ops.sign_in("ops", "another-password", "127.0.0.1")).cookie
        entries = asyncio.run(store.audit.entries(AuditQuery(kind="admin.operator")))
    finally:
        ops.passwords.close()
        asyncio.run(store.close())
    kinds = [e.kind for e in reversed(entries)]
    assert kinds == [
        "admin.operator_added",
        "admin.operator_disabled",
        "admin.operator_enabled",
        "admin.operator_password",
    ]
    assert all(e.detail["operator"] == "ops" and e.detail["actor"] for e in entries)

    cli(data_dir, "operator", "delete", "ops")
    assert orjson.loads(cli(data_dir, "operator", "list", "--json").stdout) == []


def test_without_a_terminal_or_the_variable_the_password_is_one_clear_line(
    data_dir: Path,
) -> None:
    result = cli(data_dir, "operator", "add", "ops", code=2)
    assert result.stderr == (
        "error: no password: set ACAUTH_OPERATOR_PASSWORD, or run this in a terminal to type it\n"
    )
    assert "Aborted" not in result.output and "Warning" not in result.output
    cli(data_dir, "operator", "passwd", "ops", code=2)


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["operator", "add", "bad name"], PASSWORD, "operator name must be"),
        (["operator", "add", "short"], "short", "at least 8 characters"),
        (["operator", "disable", "nobody"], None, "no operator nobody"),
        (["operator", "key", "create", "nobody"], None, "no operator nobody"),
        (["operator", "key", "list", "nobody"], None, "no operator nobody"),
        (["operator", "key", "revoke", "0123abcd"], None, "no operator key 0123abcd"),
    ],
    ids=["bad-name", "short-password", "no-operator", "key-no-operator", "list-no-op", "no-key"],
)
def test_operator_errors_are_one_line_and_exit_1(
    data_dir: Path, args: list[str], password: str | None, message: str
) -> None:
    out = cli(data_dir, *args, password=password, code=1).stderr
    assert out.startswith("error: ") and message in out
    assert out.count("\n") == 1 and "Traceback" not in out


def test_adding_an_operator_twice_is_refused(data_dir: Path) -> None:
    cli(data_dir, "operator", "add", "ops", password=PASSWORD)
    assert (
        "already exists"
        in cli(data_dir, "operator", "add", "ops", password=PASSWORD, code=1).stderr
    )


def test_a_key_is_shown_once_listed_by_id_and_revoked_everywhere_at_once(data_dir: Path) -> None:
    cli(data_dir, "operator", "add", "ops", password=PASSWORD)
    created = orjson.loads(
        cli(data_dir, "operator", "key", "create", "ops", "--label", "portal", "--json").stdout
    )
    assert set(created) == {"key", "id"} and created["key"].startswith("acop_")
    listed = orjson.loads(cli(data_dir, "operator", "key", "list", "--json").stdout)
    assert [(k["id"], k["operator"], k["label"]) for k in listed] == [
        (created["id"], "ops", "portal")
    ]
    assert created["key"] not in cli(data_dir, "operator", "key", "list").stdout

    store, ops = services(data_dir)  # a running server, its store already open
    try:
        assert asyncio.run(ops.authenticate_key(created["key"])).name == "ops"
        cli(data_dir, "operator", "key", "revoke", created["id"])
        with pytest.raises(OperatorUnauthorized):
            asyncio.run(ops.authenticate_key(created["key"]))
    finally:
        ops.passwords.close()
        asyncio.run(store.close())
    assert orjson.loads(cli(data_dir, "operator", "key", "list", "ops", "--json").stdout) == []


def test_labels_print_as_they_are_never_as_markup(data_dir: Path) -> None:
    """A label is anyone's text: ``[/x]`` once crashed the table, ``[link=…]`` made a link."""
    cli(data_dir, "operator", "add", "ops", password=PASSWORD)
    labels = ["[/oops]", "[link=https://evil.example]docs[/link]", "[bold]loud"]
    for label in labels:
        cli(data_dir, "operator", "key", "create", "ops", "--label", label)
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(data_dir), "operator", "key", "list"],
        env={"ACAUTH_SECRET": TEST_SECRET, "COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    for label in labels:
        assert label in result.stdout


# -- the service, on a real store ---------------------------------------------------------


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def ops(tmp_path: Path, clock: MovableClock) -> AsyncIterator[OperatorService]:
    store = await Store.open(f"sqlite:///{tmp_path / 'ops.db'}")
    hasher = PasswordService(1, queue=200)
    service = OperatorService(store, clock, hasher)
    await service.add("ops", PASSWORD)
    yield service
    hasher.close()
    await store.close()


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The passwords checked against a stored hash (or the dummy one)."""
    seen: list[str] = []
    real = passwords.check_password

    def spy(stored: str, password: str) -> bool:
        seen.append(password)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password", spy)
    yield seen


async def test_a_session_ends_when_the_clock_passes_its_lifetime(
    ops: OperatorService, clock: MovableClock
) -> None:
    new = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    assert new.session.expires_ms - clock.now_ms() <= ops.session_ttl_s * 1000
    assert await ops.session(new.cookie) == new.session
    clock.advance(ops.session_ttl_s - 5)
    assert await ops.session(new.cookie) == new.session
    clock.advance(10)
    assert await ops.session(new.cookie) is None


async def test_sign_out_ends_the_session_and_only_it(ops: OperatorService) -> None:
    first = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    second = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    assert first.session.csrf != second.session.csrf
    await ops.sign_out(first.cookie)
    assert await ops.session(first.cookie) is None
    assert await ops.session(second.cookie) == second.session
    assert await ops.session("") is None and await ops.session("x" * 10_000) is None


async def test_an_unknown_name_is_hashed_and_refused_like_a_wrong_password(
    ops: OperatorService, hashed: list[str]
) -> None:
    with pytest.raises(OperatorUnauthorized) as wrong:
        await ops.sign_in("ops", "wrong-password", "127.0.0.1")
    with pytest.raises(OperatorUnauthorized) as unknown:
        await ops.sign_in("nobody", "wrong-password", "127.0.0.1")
    assert wrong.value.msg == unknown.value.msg == "invalid operator name or password"
    assert hashed == ["wrong-password", "wrong-password"]
    failed = await ops.store.audit.entries(AuditQuery(kind="operator.sign_in_failed"))
    assert sorted(e.detail["operator"] for e in failed) == ["nobody", "ops"]


async def test_a_disabled_operator_has_no_key_session_or_sign_in(ops: OperatorService) -> None:
    key = await ops.create_key("ops")
    new = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    await ops.set_enabled("ops", False)
    with pytest.raises(OperatorUnauthorized):
        await ops.authenticate_key(key.secret)
    assert await ops.session(new.cookie) is None
    with pytest.raises(OperatorUnauthorized, match="operator disabled"):
        await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    await ops.set_enabled("ops", True)
    assert (await ops.authenticate_key(key.secret)).name == "ops"
    assert await ops.session(new.cookie) is None  # sessions ended for good


async def test_a_new_password_ends_the_sessions(ops: OperatorService) -> None:
    new = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    await ops.set_password("ops", "a-new-password")
    assert await ops.session(new.cookie) is None


async def test_deleting_an_operator_takes_their_keys_and_sessions(ops: OperatorService) -> None:
    key = await ops.create_key("ops")
    new = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
    await ops.delete("ops")
    with pytest.raises(OperatorUnauthorized):
        await ops.authenticate_key(key.secret)
    assert await ops.session(new.cookie) is None
    assert await ops.list_keys() == []
    with pytest.raises(DoesNotExist):
        await ops.delete("ops")


async def test_malformed_keys_are_refused(ops: OperatorService) -> None:
    await ops.create_key("ops")
    for bad in ("", "acop_", "Bearer x", "acop_" + "x" * 500, "\x00"):
        with pytest.raises(OperatorUnauthorized):
            await ops.authenticate_key(bad)


async def test_a_key_records_its_last_use_at_most_once_a_minute(
    ops: OperatorService, clock: MovableClock
) -> None:
    key = await ops.create_key("ops", "ci")
    await ops.authenticate_key(key.secret)
    (first,) = await ops.list_keys("ops")
    assert first.last_used_ms is not None
    clock.advance(30)
    await ops.authenticate_key(key.secret)
    assert (await ops.list_keys("ops"))[0].last_used_ms == first.last_used_ms
    clock.advance(31)
    await ops.authenticate_key(key.secret)
    last = (await ops.list_keys("ops"))[0].last_used_ms
    assert last is not None and last >= first.last_used_ms + 61_000


async def test_changes_are_audited_with_the_acting_operator(ops: OperatorService) -> None:
    acting = ops.as_actor("alice")
    await acting.add("bob", PASSWORD)
    key = await acting.create_key("bob")
    await acting.revoke_key(key.key.id)
    await ops.sign_in("bob", PASSWORD, "10.0.0.7")
    entries = await ops.store.audit.entries(AuditQuery())
    by_kind = {e.kind: e.detail for e in reversed(entries)}  # the newest of each kind
    assert by_kind["admin.operator_added"]["actor"] == "operator:alice"
    assert by_kind["admin.operator_key_revoked"] == {
        "actor": "operator:alice",
        "operator": "bob",
        "key_id": key.key.id,
    }
    assert by_kind["operator.signed_in"] == {
        "actor": "operator:bob",
        "operator": "bob",
        "client": "10.0.0.7",
    }
    assert ops.actor != "operator:alice"  # the service it came from keeps its actor


async def test_names_and_passwords_are_checked(ops: OperatorService) -> None:
    with pytest.raises(AlreadyExists):
        await ops.add("ops", PASSWORD)
    for name in ("", " ops", "a b", "x" * 65, "op/s", "-ops"):
        with pytest.raises(InvalidParameter, match="operator name"):
            await ops.add(name, PASSWORD)
    with pytest.raises(InvalidParameter, match="at least 8"):
        await ops.add("new", "short")
    with pytest.raises(InvalidParameter, match="label is longer than 100"):
        await ops.create_key("ops", "x" * 101)


@pytest.mark.parametrize(
    "label", ["a\u202eb", "line\nbreak", "nul\x00", "esc\x1b[2J", "x" * 101], ids=repr
)
async def test_key_labels_follow_the_rule_for_names(ops: OperatorService, label: str) -> None:
    with pytest.raises(InvalidParameter, match=r"^label "):
        await ops.create_key("ops", label)
    assert await ops.list_keys() == []
    assert (await ops.create_key("ops", "l" * 100)).key.label == "l" * 100


def count_writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The store's write transactions from now on, counted as they start."""
    writes: list[int] = []
    tx = store.runner.tx

    async def counted(fn: Any, **kw: Any) -> Any:
        writes.append(1)
        return await tx(fn, **kw)

    monkeypatch.setattr(store.runner, "tx", counted)
    return writes


async def test_sign_ins_with_impossible_names_are_audited_once_a_minute_without_the_name(
    ops: OperatorService, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fails the name pattern may be a password typed in the wrong box: only its
    length is kept; and however many arrive, the store takes one write a minute."""
    writes = count_writes(ops.store, monkeypatch)
    typed = "my secret pass phrase!"
    for _ in range(330):
        with pytest.raises(OperatorUnauthorized, match="invalid operator name or password"):
            await ops.sign_in(typed, PASSWORD, "10.0.0.9")
    assert len(writes) == 1
    clock.advance(61)
    with pytest.raises(OperatorUnauthorized):
        await ops.sign_in("ops\n", PASSWORD, "10.0.0.9")
    records = await ops.store.audit.entries(AuditQuery(kind="operator.sign_in_failed"))
    assert [(e.user, e.detail) for e in reversed(records)] == [
        (
            "",
            {"client": "10.0.0.9", "reason": "invalid name", "length": 22, "unrecorded_before": 0},
        ),
        (
            "",
            {"client": "10.0.0.9", "reason": "invalid name", "length": 4, "unrecorded_before": 329},
        ),
    ]
    assert "secret" not in str(records)


async def test_refused_keys_are_audited_once_a_minute(
    ops: OperatorService, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = count_writes(ops.store, monkeypatch)
    for i in range(100):
        with pytest.raises(OperatorUnauthorized, match="invalid operator key"):
            await ops.authenticate_key(f"acop_wrong-{i}" if i % 2 else "Bearer x", "10.0.0.8")
    assert len(writes) == 1
    clock.advance(61)
    with pytest.raises(OperatorUnauthorized):
        await ops.authenticate_key("acop_wrong")
    records = await ops.store.audit.entries(AuditQuery(kind="operator.key_refused"))
    assert [e.detail for e in reversed(records)] == [
        {"client": "10.0.0.8", "unrecorded_before": 0},
        {"client": "", "unrecorded_before": 99},
    ]


async def test_a_user_login_named_like_an_operator_never_counts_against_it(
    ops: OperatorService,
) -> None:
    """The AC API is public: a login for user "operator:ops" must not lock out operator ops."""
    for name in ("operator:ops", "ops"):
        for _ in range(10):
            await ops.store.accounts.count_attempt(name, ops.clock.now_ms(), 5, 60_000, 60_000)
    assert (await ops.sign_in("ops", PASSWORD, "127.0.0.1")).session.operator == "ops"


async def test_the_demo_seeds_its_published_operator(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'demo.db'}")
    hasher = PasswordService(1)
    try:
        assert await demo.seed(AdminService(store, [TEST_SECRET.encode()], MovableClock()))
        ops = OperatorService(store, MovableClock(), hasher)
        new = await ops.sign_in(demo.OPERATOR, demo.OPERATOR_PASSWORD, "127.0.0.1")
        assert new.session.operator == "admin"
        await ops.delete("admin")
        assert not await demo.seed(AdminService(store, [TEST_SECRET.encode()], MovableClock()))
        assert await ops.find("admin") is not None  # seeded again when absent
    finally:
        hasher.close()
        await store.close()


# -- on both backends: what the database itself decides ----------------------------------


async def test_keys_and_session_ids_are_kept_only_as_digests(
    database_url: str, tmp_path: Path
) -> None:
    store = await Store.open(database_url)
    hasher = PasswordService(1)
    try:
        ops = OperatorService(store, MovableClock(), hasher)
        await ops.add("ops", PASSWORD)
        key = await ops.create_key("ops")
        new = await ops.sign_in("ops", PASSWORD, "127.0.0.1")
        kept = orjson.dumps(await EmulatorQueries(store.runner).dump())
        if store.dialect == "sqlite":
            db = tmp_path / "store.db"
            kept += b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    finally:
        hasher.close()
        await store.close()
    for secret in (key.secret, new.cookie, PASSWORD):
        assert secret.encode() not in kept
    for secret in (key.secret, new.cookie):  # what is kept instead
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in kept


async def test_lookups_by_impossible_names_find_nothing_on_either_backend(
    database_url: str,
) -> None:
    """PostgreSQL refuses NUL in a query's text: no such lookup may reach it."""
    store = await Store.open(database_url)
    hasher = PasswordService(1)
    try:
        ops = OperatorService(store, MovableClock(), hasher)
        await ops.add("ops", PASSWORD)
        for name in ("ops\x00", "\x00", "\u202eops", "o" * 65):
            assert await ops.find(name) is None
            calls: list[Callable[[], Awaitable[object]]] = [
                partial(ops.set_enabled, name, False),
                partial(ops.set_password, name, PASSWORD),
                partial(ops.unlock, name),
                partial(ops.create_key, name),
                partial(ops.list_keys, name),
                partial(ops.delete, name),
            ]
            for call in calls:
                with pytest.raises(DoesNotExist, match=r"^no operator "):
                    await call()
            with pytest.raises(OperatorUnauthorized):
                await ops.sign_in(name, PASSWORD, "127.0.0.1")
        for key_id in ("\x00", "0123\x00", "k" * 33):
            with pytest.raises(DoesNotExist, match=r"^no operator key "):
                await ops.revoke_key(key_id)
        with pytest.raises(OperatorUnauthorized):
            await ops.authenticate_key("acop_\x00")
        assert await ops.session("\x00") is None
        assert [o.name for o in await ops.list_operators()] == ["ops"]
    finally:
        hasher.close()
        await store.close()


async def test_60_concurrent_wrong_passwords_on_two_instances_get_at_most_5_hashed(
    database_url: str, hashed: list[str]
) -> None:
    stores = [await Store.open(database_url) for _ in range(2)]
    hasher = PasswordService(2, queue=200)
    # Locked for a minute: the burst must not outlast the lock (1 s by default).
    policy = Policy(lockout_threshold=5, lockout_base_ms=60_000)
    try:
        one, two = (OperatorService(s, MovableClock(), hasher, policy=policy) for s in stores)
        await one.add("ops", PASSWORD)
        hashed.clear()

        async def attempt(service: OperatorService, i: int) -> str:
            try:
                await service.sign_in("ops", f"wrong-{i}", "127.0.0.1")
            except (OperatorUnauthorized, AccountLocked) as exc:
                return type(exc).__name__
            return "signed in"

        outcomes = Counter(
            await asyncio.gather(*(attempt(one if i % 2 else two, i) for i in range(60)))
        )
        assert outcomes["OperatorUnauthorized"] <= 5, outcomes
        assert outcomes["AccountLocked"] == 60 - outcomes["OperatorUnauthorized"], outcomes
        assert len(hashed) <= 5
        with pytest.raises(AccountLocked):
            await two.sign_in("ops", PASSWORD, "127.0.0.1")
        assert await one.unlock("ops") is True
        assert (await two.sign_in("ops", PASSWORD, "127.0.0.1")).session.operator == "ops"
    finally:
        hasher.close()
        for s in stores:
            await s.close()


async def test_disabling_on_one_instance_holds_on_the_other_at_once(database_url: str) -> None:
    stores = [await Store.open(database_url) for _ in range(2)]
    hasher = PasswordService(1)
    try:
        here, there = (OperatorService(s, MovableClock(), hasher) for s in stores)
        await here.add("ops", PASSWORD)
        key = await here.create_key("ops")
        new = await there.sign_in("ops", PASSWORD, "127.0.0.1")
        assert await there.session(new.cookie) is not None
        await here.set_enabled("ops", False)
        assert await there.session(new.cookie) is None
        with pytest.raises(OperatorUnauthorized):
            await there.authenticate_key(key.secret)
    finally:
        hasher.close()
        for s in stores:
            await s.close()


async def test_an_operator_cannot_disable_or_delete_the_last_enabled_operator(
    ops: OperatorService,
) -> None:
    as_ops = ops.as_actor("ops")
    with pytest.raises(InvalidParameter, match="last enabled operator"):
        await as_ops.set_enabled("ops", False)
    with pytest.raises(InvalidParameter, match="last enabled operator"):
        await as_ops.delete("ops")
    found = await ops.find("ops")
    assert found is not None and found.enabled
    await ops.add("second", PASSWORD)
    await as_ops.set_enabled("ops", False)  # another is enabled now
    await ops.set_enabled("second", False)  # the CLI, on the store's machine, may
    found = await ops.find("second")
    assert found is not None and not found.enabled
