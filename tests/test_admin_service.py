"""What the admin API and the console ask of the admin service: search, paging, live
tokens, unlocking, the audit page and its CSV, the overview."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from acauth.clock import MovableClock
from acauth.errors import DoesNotExist, InvalidParameter
from acauth.models import AuditEntry, AuditQuery, RegionUrl
from acauth.service import audit
from acauth.service.admin import AdminService
from acauth.service.auth import KEY_ATTEMPTS
from acauth.store import Store
from helpers import token_record

KEYS = [b"k" * 32, b"o" * 32]


async def _admin(url: str) -> AdminService:
    store = await Store.open(url)
    return AdminService(store, KEYS, MovableClock(), min_password_length=4)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[AdminService]:
    service = await _admin(f"sqlite:///{tmp_path / 'admin.db'}")
    yield service
    await service.store.close()


@pytest.fixture
async def any_admin(database_url: str) -> AsyncIterator[AdminService]:
    service = await _admin(database_url)
    yield service
    await service.store.close()


async def test_search_matches_name_full_name_or_email_in_any_case_and_pages_by_name(
    any_admin: AdminService,
) -> None:
    admin = any_admin
    for i, (name, full, email) in enumerate(
        [
            ("carol", "Carol Smith", "c@lab.example"),
            ("alice", "Alice Jones", "alice@example.org"),
            ("bob", "Bob SMITH", "b@example.org"),
            ("dave", "Dave", "dave@smithery.example"),
            ("erin_1", "Erin", "e@x"),
        ]
    ):
        await admin.add_user(name, "pass", user_id=100 + i, full_name=full, email=email)
    smiths = await admin.search_users("smith")
    assert [u.name for u in smiths.items] == ["bob", "carol", "dave"] and smiths.next is None
    assert [u.name for u in (await admin.search_users("_")).items] == ["erin_1"]  # not a wildcard
    assert [u.name for u in (await admin.search_users("%")).items] == []

    names, cursor = [], None
    while True:
        page = await admin.search_users(limit=2, cursor=cursor)
        assert len(page.items) <= 2
        names += [u.name for u in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert names == ["alice", "bob", "carol", "dave", "erin_1"]


async def test_bad_cursors_and_limits_are_refused(admin: AdminService) -> None:
    await admin.add_org("org-a", "A")
    await admin.add_org("org-b", "B")
    page = await admin.audit_page(AuditQuery(limit=1))
    assert page.next is not None
    for cursor in ("", "not-base64!", "W10", "WyJ1IiwxXQ"):  # [] and ["u", 1]
        with pytest.raises(InvalidParameter, match="invalid cursor"):
            await admin.search_users(cursor=cursor)
    with pytest.raises(InvalidParameter, match="invalid cursor"):  # an audit cursor
        await admin.search_users(cursor=page.next)
    assert (await admin.audit_page(AuditQuery(limit=1), page.next)).next is None
    for limit in (0, 501):
        with pytest.raises(InvalidParameter, match="limit"):
            await admin.search_users(limit=limit)


async def test_update_user_changes_what_is_given_in_one_audited_write(
    admin: AdminService,
) -> None:
    await admin.add_user("alice", "pass", user_id=7)
    user = await admin.update_user(
        "alice", status="Trial", role="2", password="new-pass", email="a@example.org"
    )
    assert (user.account_status, user.role, user.email) == ("Trial", "2", "a@example.org")
    (record,) = await admin.list_audit(AuditQuery(kind="admin.user_updated"))
    assert record.detail["fields"] == ["account_status", "email", "password", "role"]
    assert "new-pass" not in str(record.detail)
    with pytest.raises(InvalidParameter, match="unknown user field"):
        await admin.update_user("alice", colour="red")
    with pytest.raises(InvalidParameter, match="status"):
        await admin.update_user("alice", status="Happy")
    with pytest.raises(InvalidParameter, match="at least"):
        await admin.update_user("alice", password="x")
    with pytest.raises(DoesNotExist):
        await admin.update_user("nobody", role="1")


async def test_unlock_clears_the_lockout_of_the_name_and_of_its_keys(admin: AdminService) -> None:
    await admin.add_user("alice", "pass", user_id=7)
    await admin.create_key("alice", access_key="ak-alice", secret_key="sk")
    now = admin.clock.now_ms()
    for name in ("alice", KEY_ATTEMPTS + "ak-alice"):
        await admin.store.accounts.count_attempt(name, now, 1, 60_000, 60_000)
    assert {lock.name for lock in (await admin.overview()).lockouts} == {"alice", "key:ak-alice"}
    assert await admin.unlock_user("alice") is True
    assert (await admin.overview()).lockouts == []
    assert await admin.unlock_user("alice") is False


async def test_live_tokens_leave_out_expired_revoked_and_renewed_ones(admin: AdminService) -> None:
    await admin.add_user("alice", "pass", user_id=7)
    now = admin.clock.now_ms()
    later = now + 3_600_000
    await admin.store.tokens.add(
        [
            token_record("live", 7, expire_ms=later),
            token_record("expired", 7, expire_ms=now - 1),
            token_record("revoked", 7, expire_ms=later),
            token_record("renewed", 7, expire_ms=later),
            token_record("other-user", 8, expire_ms=later),
        ]
    )
    await admin.revoke_token("revoked")
    await admin.store.tokens.renew("renewed", token_record("successor", 7, expire_ms=later), now)
    assert sorted(t.jti for t in await admin.live_tokens("alice")) == ["live", "successor"]
    assert (await admin.overview()).live_tokens == 3


async def test_the_audit_pages_through_every_record_once_newest_first(
    admin: AdminService,
) -> None:
    at = admin.clock.now_ms()
    for i in range(7):  # several in the same millisecond: the id breaks the tie
        await admin.store.audit.add(AuditEntry(at + i // 3, "admin.test", "u", str(i)))
    await admin.store.audit.add(AuditEntry(at, "login.ok", "v"))
    seen, cursor = [], None
    while True:
        page = await admin.audit_page(AuditQuery(kind="admin.test", limit=3), cursor)
        seen += [e.subject for e in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert seen == ["6", "5", "4", "3", "2", "1", "0"]


def test_csv_has_a_header_and_defuses_formulas() -> None:
    entries = [
        AuditEntry(0, "login.failed", "=HYPERLINK(1)", "+x", {"actor": "@me", "n": 1}),
        AuditEntry(1000, "admin.user_added", "-1", "\tq", {"note": 'a,"b"'}),
        AuditEntry(2000, "login.ok", "plain", "", {}),
    ]
    rows = list(csv.reader(io.StringIO(audit.to_csv(entries))))
    assert rows[0] == ["at", "kind", "user", "subject", "actor", "detail"]
    assert rows[1][:5] == [
        "1970-01-01T00:00:00.000+00:00",
        "login.failed",
        "'=HYPERLINK(1)",
        "'+x",
        "'@me",
    ]
    assert rows[2][2:4] == ["'-1", "'\tq"] and rows[2][5] == '{"note":"a,\\"b\\""}'
    assert rows[3][2:5] == ["plain", "", ""]
    assert len(rows) == 4


async def test_the_overview_counts_the_last_day(any_admin: AdminService) -> None:
    admin = any_admin
    await admin.add_user("alice", "pass", user_id=7)
    clock = admin.clock
    assert isinstance(clock, MovableClock)
    old = audit.entry(clock, "login.ok", user="alice")
    await audit.record(admin.store, old)
    clock.advance(2 * 86_400)
    for _ in range(2):
        await audit.record(admin.store, audit.entry(clock, "login.ok", user="alice"))
    for _ in range(3):  # one counted record
        await audit.record(admin.store, audit.entry(clock, "login.failed", user="alice"))
    await audit.record(admin.store, audit.entry(clock, "login.failed", user="bob"))
    seen = await admin.overview()
    assert (seen.users, seen.logins_24h, seen.failures_24h) == (1, 2, 4)
    assert seen.store == "ok"
    assert [k.active for k in seen.signing] == [True, False]
    assert len({k.fingerprint for k in seen.signing}) == 2
    assert all(b"k" * 8 not in k.fingerprint.encode() for k in seen.signing)


async def test_as_actor_names_the_operator_and_leaves_the_original(admin: AdminService) -> None:
    await admin.as_actor("alice").add_org("org-a", "A")
    await admin.add_org("org-b", "B")
    records = await admin.list_audit(AuditQuery(kind="admin.org_added"))
    assert [e.detail["actor"] for e in records] == [admin.actor, "operator:alice"]


# -- one rule for names, whatever the surface --------------------------------------

BAD_CHARACTERS = ["\x00", "\x1b", "\n", "\x7f", "\x85", "\u202e", "\u2066", "\u2028"]
BAD_IDS = ["nul", "esc", "newline", "del", "c1", "rlo", "lri", "line-separator"]


@pytest.mark.parametrize("bad", BAD_CHARACTERS, ids=BAD_IDS)
async def test_names_with_control_or_bidi_characters_are_refused_on_every_write(
    admin: AdminService, bad: str
) -> None:
    await admin.add_user("alice", "pass", user_id=7)
    await admin.add_region(20001, "East")
    writes: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("name", lambda: admin.add_user(f"bob{bad}", "pass")),
        ("full_name", lambda: admin.add_user("bob", "pass", full_name=f"Bob{bad}")),
        ("email", lambda: admin.update_user("alice", email=f"a{bad}@example.org")),
        ("org_id", lambda: admin.add_org(f"org{bad}", "Org")),
        ("name", lambda: admin.add_org("org", f"Org{bad}")),
        ("name", lambda: admin.add_region(20002, f"West{bad}")),
        ("description", lambda: admin.add_region(20002, "West", f"far{bad}")),
        ("compute_user", lambda: admin.grant("alice", 20001, f"alice{bad}", None)),
        ("access_key", lambda: admin.create_key("alice", access_key=f"ak{bad}")),
        ("org_id", lambda: admin.create_key("alice", f"org{bad}")),
    ]
    for field, write in writes:
        with pytest.raises(InvalidParameter, match=f"^{field} must not contain control"):
            await write()
    assert [u.name for u in await admin.list_users()] == ["alice"]
    assert await admin.list_orgs() == [] and await admin.list_keys() == []
    assert (await admin.show_user("alice")).grants == []


async def test_names_too_long_or_blank_are_refused(admin: AdminService) -> None:
    with pytest.raises(InvalidParameter, match=r"^name is required"):
        await admin.add_user("  ", "pass")
    with pytest.raises(InvalidParameter, match=r"^org_id is required"):
        await admin.add_org("", "Org")
    with pytest.raises(InvalidParameter, match=r"^description is longer than 1024"):
        await admin.add_region(20001, "East", "d" * 1025)
    await admin.add_user("alice", "pass", user_id=7)
    await admin.add_region(20001, "East")
    with pytest.raises(InvalidParameter, match=r"^compute_user is longer than 255"):
        await admin.grant("alice", 20001, "c" * 256, None)


async def test_a_lookup_by_an_impossible_name_finds_nothing_on_either_backend(
    any_admin: AdminService,
) -> None:
    """PostgreSQL refuses NUL in a query's text: no such lookup may reach it."""
    admin = any_admin
    await admin.add_user("alice", "pass", user_id=7)
    for name in ("a\x00b", "alice\x00", "\x1b[31m", "x" * 300, "\ud800"):
        assert await admin.find_user(name) is None
        assert await admin.find_org(name) is None
        for lookup in (admin.show_user, admin.live_tokens_page, admin.revoke_user):
            with pytest.raises(DoesNotExist, match=r"^no user "):
                await lookup(name)
        with pytest.raises(DoesNotExist):
            await admin.set_org_enabled(name, False)
        with pytest.raises(DoesNotExist):
            await admin.delete_key(name)
        assert (await admin.search_users(name)).items == []
        assert await admin.list_audit(AuditQuery(user=name)) == []
        assert (await admin.audit_page(AuditQuery(kind=name))).items == []
        assert await admin.revoke_token(name) is False
    with pytest.raises(DoesNotExist) as found:
        await admin.show_user("a\x1b[2Jb")
    assert "\x1b" not in found.value.msg


async def test_what_the_admin_service_audits_is_cleaned_in_the_store_and_the_log(
    admin: AdminService, json_logs: io.StringIO
) -> None:
    assert await admin.revoke_token("jti\x1b[2J\x00") is False
    (record,) = await admin.list_audit(AuditQuery(kind="admin.token_revoked"))
    assert record.detail["jti"] == "jti\\u001b[2J\\u0000"
    (line,) = [orjson.loads(x) for x in json_logs.getvalue().splitlines() if "token_rev" in x]
    assert line["event"] == "admin.token_revoked" and line["jti"] == "jti\\u001b[2J\\u0000"


# -- cursors ----------------------------------------------------------------------------


def _cursor(*key: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


CRAFTED_AUDIT = [
    _cursor("a", 2**64 - 1, 1),
    _cursor("a", 2**63, 1),
    _cursor("a", True, True),
    _cursor("a", -1, 1),
    _cursor("a", 1.0, 1),
    _cursor("a", 1, 2, 3),
    _cursor("a", 1, 2**31),  # beyond the audit's id column
    "A" * 5000,
]
CRAFTED_USERS = [_cursor("u", "a\x00"), _cursor("u", "x" * 256), _cursor("u", 1)]


async def test_crafted_cursors_are_refused_on_either_backend(any_admin: AdminService) -> None:
    admin = any_admin
    await admin.add_user("alice", "pass", user_id=7)
    for cursor in CRAFTED_AUDIT:
        with pytest.raises(InvalidParameter, match="invalid cursor"):
            await admin.audit_page(AuditQuery(), cursor)
    for cursor in CRAFTED_USERS:
        with pytest.raises(InvalidParameter, match="invalid cursor"):
            await admin.search_users(cursor=cursor)
    for cursor in (_cursor("t", 2**63, "j"), _cursor("t", 1, "j\x00"), _cursor("t", 1)):
        with pytest.raises(InvalidParameter, match="invalid cursor"):
            await admin.live_tokens_page("alice", cursor)
    top = _cursor("a", 2**63 - 1, 2**31 - 1)  # the largest key there can be: a valid cursor
    assert len((await admin.audit_page(AuditQuery(), top)).items) == 1


# -- region URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://files.example",
        "https://",
        "http:///path",
        "//host:1",
        "hpc.example:65051",
        "https://a b:1",
        "https://h:99999",
        "https://h:port",
        "",
    ],
)
async def test_region_urls_must_be_http_or_https_with_a_host(admin: AdminService, url: str) -> None:
    await admin.add_region(20001, "East")
    with pytest.raises(InvalidParameter, match=r"^url "):
        await admin.set_urls(
            20001, "hpc", [RegionUrl("hpc", "https://ok:1"), RegionUrl("hpc", url)]
        )
    region = await admin.find_region(20001)
    assert region is not None and region.urls == ()


async def test_region_urls_of_either_scheme_are_kept(admin: AdminService) -> None:
    await admin.add_region(20001, "East")
    urls = ["https://hpc.east:65051", "http://10.0.0.1:8080/ac", "HTTPS://[::1]:1"]
    await admin.set_urls(20001, "hpc", [RegionUrl("hpc", u) for u in urls])
    region = await admin.find_region(20001)
    assert region is not None and [u.url for u in region.urls] == urls


# -- live tokens, a page at a time; the owners of keys -------------------------------------


async def test_live_tokens_come_a_page_at_a_time_newest_first(admin: AdminService) -> None:
    await admin.add_user("alice", "pass", user_id=7)
    now = admin.clock.now_ms()
    later = now + 3_600_000
    records = [
        replace(token_record(f"t{i}", 7, expire_ms=later), issued_ms=now - i // 2) for i in range(7)
    ]
    await admin.store.tokens.add(records)
    seen, cursor = [], None
    while True:
        page = await admin.live_tokens_page("alice", cursor, limit=3)
        assert len(page.items) <= 3
        seen += [t.jti for t in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert seen == [f"t{i}" for i in range(7)]  # newest first; the id breaks a tie
    assert [t.jti for t in await admin.live_tokens("alice")] == seen
    for limit in (0, 501):
        with pytest.raises(InvalidParameter, match="limit"):
            await admin.live_tokens_page("alice", limit=limit)


async def test_live_tokens_without_a_page_are_at_most_500(admin: AdminService) -> None:
    await admin.add_user("alice", "pass", user_id=7)
    later = admin.clock.now_ms() + 3_600_000
    await admin.store.tokens.add([token_record(f"t{i:03}", 7, expire_ms=later) for i in range(502)])
    assert len(await admin.live_tokens("alice")) == 500
    assert (await admin.live_tokens_page("alice")).next is not None


async def test_key_owner_names_are_those_of_the_keys_users_only(admin: AdminService) -> None:
    for uid, name in ((7, "alice"), (8, "bob"), (9, "carol")):
        await admin.add_user(name, "pass", user_id=uid)
        await admin.create_key(name, access_key=f"ak-{name}", secret_key="sk")
    keys = [k for k in await admin.list_keys() if k.access_key != "ak-carol"]
    assert await admin.key_owner_names(keys) == {7: "alice", 8: "bob"}
    assert await admin.key_owner_names([]) == {}


@pytest.mark.parametrize("name", [" spaced ", "trailing ", "..", ".", "a/b", "../../etc/passwd"])
async def test_names_that_could_never_log_in_or_be_opened_are_refused(
    admin: AdminService, name: str
) -> None:
    with pytest.raises(InvalidParameter):
        await admin.add_user(name, "a long password")
    assert await admin.find_user(name) is None


async def test_a_password_longer_than_a_header_can_carry_is_refused(admin: AdminService) -> None:
    with pytest.raises(InvalidParameter, match="at most 1024"):
        await admin.add_user("longpw", "x" * 1025)
    await admin.add_user("longpw", "x" * 1024)
    with pytest.raises(InvalidParameter, match="at most 1024"):
        await admin.set_password("longpw", "y" * 60_000)
