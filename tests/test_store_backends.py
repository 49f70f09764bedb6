"""Every store operation, on SQLite and on PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from acauth.clock import MovableClock
from acauth.errors import (
    AlreadyExists,
    DoesNotExist,
    InvalidParameter,
    StorageUnavailable,
    TokenRevoked,
)
from acauth.models import AuditQuery, Org, RegionUrl
from acauth.service.admin import AdminService
from acauth.service.state import VerifyState
from acauth.store import Store
from acauth.tokens import Claims
from helpers import token_record

KEYS = [b"k" * 32]


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[AdminService]:
    store = await Store.open(database_url)
    yield AdminService(store, KEYS, MovableClock())
    await store.close()


async def test_orgs(admin: AdminService) -> None:
    await admin.add_org("o1", "One")
    with pytest.raises(AlreadyExists):
        await admin.add_org("o1", "Again")
    await admin.set_org_enabled("o1", False)
    assert await admin.store.accounts.list_orgs() == [Org("o1", "One", False)]
    assert await admin.store.accounts.disabled_orgs() == {"o1"}
    with pytest.raises(DoesNotExist):
        await admin.set_org_enabled("nope", True)


async def test_users(admin: AdminService) -> None:
    alice = await admin.add_user("alice", "password-1", user_id=7, full_name="Alice A")
    assert await admin.store.accounts.get_user_by_name("alice") == alice
    assert await admin.store.accounts.next_user_id() == 8
    with pytest.raises(AlreadyExists):
        await admin.add_user("alice", "password-2")
    await admin.set_status("alice", "Owe")
    owing = await admin.store.accounts.get_user(7)
    assert owing is not None and owing.account_status == "Owe"
    assert await admin.store.accounts.user_statuses() == {7: "Owe"}
    await admin.delete_user("alice")
    assert await admin.store.accounts.get_user(7) is None
    with pytest.raises(DoesNotExist):
        await admin.delete_user("alice")


async def test_regions_grants_keys(admin: AdminService) -> None:
    await admin.add_user("bob", "password-1", user_id=9)
    await admin.add_region(2, "Two")
    await admin.add_region(1, "One", "first")
    await admin.set_urls(
        1, "hpc", [RegionUrl("hpc", "https://a"), RegionUrl("hpc", "https://b", enabled=False)]
    )
    await admin.set_urls(1, "hpc", [RegionUrl("hpc", "https://c")])
    region = await admin.store.regions.get_region(1)
    assert region is not None and [u.url for u in region.urls] == ["https://c"]
    await admin.grant("bob", 2, None, None)
    await admin.grant("bob", 1, "acct", "/home/acct")
    await admin.grant("bob", 1, "acct2", None)  # re-granting updates
    grants = await admin.store.regions.grants_for(9)
    assert [(g.cluster_id, name, g.compute_user) for g, name in grants] == [
        (1, "One", "acct2"),
        (2, "Two", "bob"),
    ]
    await admin.revoke_grant("bob", 2)
    assert await admin.store.regions.get_grant(9, 2) is None
    ak, sk = await admin.create_key("bob", "org")
    stored = await admin.store.keys.get_key(ak)
    assert stored is not None and sk.encode() not in stored.sealed_secret
    assert admin.box.open(ak, stored.sealed_secret) == sk
    await admin.delete_key(ak)
    assert await admin.store.keys.list_keys() == []


async def test_attempts_are_counted_and_lock_at_the_threshold(admin: AdminService) -> None:
    accounts = admin.store.accounts
    counted = [
        await accounts.count_attempt("x", 1000, threshold=3, base_ms=500, max_ms=1200)
        for _ in range(3)
    ]
    # The third attempt locks the name at once, before it is evaluated.
    assert [(c.failures, c.locked_until_ms) for c in counted] == [(1, 0), (2, 0), (3, 1500)]
    # While locked nothing is counted: failures 0 says "refused", with the lock's end.
    locked = await accounts.count_attempt("x", 1400, threshold=3, base_ms=500, max_ms=1200)
    assert (locked.failures, locked.locked_until_ms) == (0, 1500)
    # After it, the next attempt is counted and locks again, for twice as long, then capped.
    again = await accounts.count_attempt("x", 1500, threshold=3, base_ms=500, max_ms=1200)
    assert (again.failures, again.locked_until_ms) == (4, 2500)
    capped = await accounts.count_attempt("x", 2500, threshold=3, base_ms=500, max_ms=1200)
    assert (capped.failures, capped.locked_until_ms) == (5, 3700)
    await accounts.clear_failures("x")
    assert await accounts.get_lockout("x") is None
    first = await accounts.count_attempt("y", 1000, threshold=1, base_ms=500, max_ms=1200)
    assert (first.failures, first.locked_until_ms) == (1, 1500)


async def test_revocations_reach_the_verify_state(admin: AdminService) -> None:
    store = admin.store
    user = await admin.add_user("carol", "password-1", user_id=11)
    await store.tokens.add([token_record("a", 11), token_record("b", 11), token_record("c", 11)])
    state = VerifyState(store, admin.clock)
    await state.load()
    claims = Claims("u", "Normal", "1", 10**13, "0", "o", "carol", "11", "a")
    state.check(claims)
    assert await store.tokens.revoke("a", 5)
    assert not await store.tokens.revoke("a", 6)  # already
    assert await state.refresh() == 1
    with pytest.raises(TokenRevoked):
        state.check(claims)
    assert await store.tokens.revoke_user(user.user_id, 7) == 2
    await state.refresh()
    assert all(jti in state.revoked for jti in ("a", "b", "c")) and len(state.revoked) == 3
    await state.prune()  # rebuilt from the store: the same three
    assert all(jti in state.revoked for jti in ("a", "b", "c")) and len(state.revoked) == 3


async def test_chain_revocation(admin: AdminService) -> None:
    store = admin.store
    await store.tokens.add([token_record("root")])
    await store.tokens.renew("root", token_record("child", parent="root", root="root"), 1)
    await store.tokens.renew("child", token_record("grand", parent="child", root="root"), 2)
    assert await store.tokens.revoke_chain("root", 3) == 3
    for jti in ("root", "child", "grand"):
        rec = await store.tokens.get(jti)
        assert rec is not None and rec.revoked_ms == 3


async def test_unreachable_postgres_is_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable):
        await Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/none", timeout_s=1)


async def test_admin_reads(admin: AdminService) -> None:
    await admin.add_org("o1", "One")
    dan = await admin.add_user("dan", "password-1", user_id=12)
    await admin.add_region(3, "Three")
    ak, _ = await admin.create_key("dan", "o1")
    assert await admin.list_orgs() == [Org("o1", "One", True)]
    assert await admin.find_org("o1") == Org("o1", "One", True)
    assert await admin.find_org("nope") is None
    assert await admin.list_users() == [dan]
    assert await admin.find_user("dan") == dan
    assert await admin.find_user("nobody") is None
    assert [r.cluster_id for r in await admin.list_regions()] == [3]
    assert await admin.find_region(4) is None
    assert [k.access_key for k in await admin.list_keys("dan")] == [ak]
    assert [k.access_key for k in await admin.list_keys()] == [ak]
    with pytest.raises(DoesNotExist):
        await admin.list_keys("nobody")
    added = await admin.list_audit(AuditQuery(kind="admin.user"))
    assert [(e.kind, e.user) for e in added] == [("admin.user_added", "dan")]
    assert [e.kind for e in await admin.list_audit(AuditQuery(limit=2))] == [
        "admin.key_created",
        "admin.region_added",
    ]


async def test_admin_values_longer_than_their_columns_are_refused_before_the_store(
    admin: AdminService,
) -> None:
    """PostgreSQL would fail on them with a driver error; SQLite would keep them whole."""
    await admin.add_org("o1", "One")
    await admin.add_user("alice", "password-1", user_id=7)
    await admin.add_region(20001, "East")
    long_url = [RegionUrl("hpc", "https://" + "h" * 2048)]
    attempts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("name", lambda: admin.add_user("u" * 256, "password-1")),
        ("org_id", lambda: admin.add_org("o" * 129, "Long")),
        ("name", lambda: admin.add_region(20002, "r" * 256)),
        ("url", lambda: admin.set_urls(20001, "hpc", long_url)),
        ("home_path", lambda: admin.grant("alice", 20001, None, "/" + "p" * 1024)),
        ("email", lambda: admin.add_user("bob", "password-1", email="e" * 256)),
    ]
    for column, attempt in attempts:
        with pytest.raises(InvalidParameter, match=f"^{column} is longer than"):
            await attempt()
    assert [u.name for u in await admin.list_users()] == ["alice"]
    assert [o.org_id for o in await admin.list_orgs()] == ["o1"]
    region = await admin.find_region(20001)
    assert region is not None and region.urls == ()
