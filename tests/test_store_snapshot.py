"""The emulator's store snapshot, on SQLite and on PostgreSQL: dumped, loaded back exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from acauth.clock import MovableClock
from acauth.errors import InvalidParameter
from acauth.models import RegionUrl
from acauth.service.admin import AdminService
from acauth.store import Store
from acauth.store.emulation import EmulatorQueries
from helpers import token_record

KEYS = [b"k" * 32]


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[AdminService]:
    store = await Store.open(database_url)
    admin = AdminService(store, KEYS, MovableClock())
    await admin.add_org("org", "Org")
    await admin.add_user("alice", "pw-alice-1", user_id=7)
    await admin.add_region(20001, "East")
    await admin.set_urls(
        20001, "hpc", [RegionUrl("hpc", "https://h:1"), RegionUrl("hpc", "https://h:2")]
    )
    await admin.grant("alice", 20001, None, None)
    await admin.create_key("alice", "org", access_key="ak", secret_key="sk")
    await store.tokens.add([token_record("t1", 7), token_record("t2", 7)])
    yield admin
    await store.close()


async def test_a_dump_loaded_back_is_the_store_exactly(admin: AdminService) -> None:
    queries = EmulatorQueries(admin.store.runner)
    before = orjson.loads(orjson.dumps(await queries.dump()))  # as it travels: JSON
    await admin.revoke_token("t1")
    await admin.set_status("alice", "Disable")
    await admin.add_org("later", "Later")
    await queries.load(before)
    assert await queries.dump() == before
    assert await queries.live_jtis(0) == ["t1", "t2"]  # the revocation is undone
    # Numbered rows go on after the restored ones (PostgreSQL's sequences follow).
    await admin.add_org("after", "After")
    await admin.set_urls(20001, "ai", [RegionUrl("ai", "https://a:1")])


async def test_a_dump_that_does_not_fit_changes_nothing(admin: AdminService) -> None:
    queries = EmulatorQueries(admin.store.runner)
    before = await queries.dump()
    broken = {**before, "users": [{k: v for k, v in before["users"][0].items() if k != "name"}]}
    with pytest.raises(InvalidParameter, match="does not fit the schema"):
        await queries.load(broken)
    with pytest.raises(InvalidParameter, match="unknown table"):
        await queries.load({**before, "extra": []})
    with pytest.raises(InvalidParameter, match="unknown column"):
        await queries.load({**before, "orgs": [{"org_id": "x", "colour": "red"}]})
    with pytest.raises(InvalidParameter, match="binary columns are hex"):
        keys = [{**before["access_keys"][0], "sealed_secret": "not hex"}]
        await queries.load({**before, "access_keys": keys})
    assert await queries.dump() == before


async def test_live_tokens_are_the_unexpired_unrevoked_ones(admin: AdminService) -> None:
    await admin.store.tokens.add([token_record("old", 7, expire_ms=1000)])
    await admin.revoke_token("t2")
    assert await EmulatorQueries(admin.store.runner).live_jtis(5000) == ["t1"]
