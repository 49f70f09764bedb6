"""The web console, in a real browser (Debian's Chromium) and, for its HTTP rules, over httpx.

One server and one browser for the module. The flows run with JavaScript off:
every form must work without it. The tour of the pages runs with it on, checks
each page's accessibility, and keeps a screenshot of every page at desktop and
phone width in ``test-artifacts/console/``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.requests import Request

from acauth import demo, tokens
from acauth.server.clients import ClientAddresses, parse_networks
from acauth.server.console.security import Cookies
from acauth.service.admin import AdminService
from acauth.testing import LiveServer
from browser import (
    ARTIFACTS,
    HEADINGS,
    UNLABELLED,
    chromium_path,
    contrast,
    heading_problems,
    http_console,
    low_contrast,
    probe_hostile,
)
from helpers import BASE, DEMO_HEADERS, signed_headers, wait_until

PASSWORD = "console-test-password"
ORG = DEMO_HEADERS["orgId"]
REGION = "11112"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("console")
    # Long lockouts: a user locked by a test stays locked until the console unlocks them.
    overrides: dict[str, Any] = {"login_rate_per_s": 0, "lockout_threshold": 3}
    with LiveServer.start(data_dir, lockout_base_s=60, **overrides) as server:
        yield server


@pytest.fixture(scope="module")
def browser(live: LiveServer) -> Iterator[Any]:
    """Chromium, started after the server: Playwright's sync API holds an event loop
    in this thread while it runs, so no ``asyncio.run`` may start here then."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


class Tab:
    """A page of a browser context, with what its console said and the page errors."""

    def __init__(self, browser: Any, base_url: str, **options: Any) -> None:
        self.context = browser.new_context(base_url=base_url, accept_downloads=True, **options)
        self.context.set_default_timeout(5000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.refusals: set[str] = set()
        """Paths whose error status is expected (the browser logs it as an error)."""
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        url = str(message.location.get("url", ""))
        if message.text.startswith("Failed to load resource") and any(
            url.endswith(path) for path in self.refusals
        ):
            return
        self.errors.append(f"console: {message.text} ({url})")

    def goto(self, path: str, status: int = 200) -> Any:
        if status >= 400:
            self.refusals.add(path)
        response = self.page.goto(path)
        assert response is not None and response.status == status, (path, response)
        return self.page

    def sign_in(self, name: str = demo.OPERATOR, password: str = demo.OPERATOR_PASSWORD) -> None:
        self.goto("/console/sign-in")
        self.page.get_by_label("Operator name").fill(name)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/console/sign-in" not in url)

    def flash(self) -> str:
        return str(self.page.locator(".flash").inner_text())

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture(scope="module")
def console(browser: Any, live: LiveServer) -> Iterator[Tab]:
    """The operator ``admin`` signed in, JavaScript off."""
    tab = Tab(browser, live.base_url, java_script_enabled=False)
    tab.sign_in()
    assert tab.page.url == f"{live.base_url}/console"
    yield tab
    tab.close()


@pytest.fixture
def page(console: Tab) -> Iterator[Any]:
    """The signed-in page; no console error or page error may happen during the test."""
    before = len(console.errors)
    yield console.page
    assert console.errors[before:] == []


@pytest.fixture(scope="module")
def ac(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, timeout=10) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------


def add_user(page: Any, name: str, password: str = PASSWORD) -> None:
    """Add ``name`` in the console, with access to the demo region."""
    page.goto("/console/users")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Full name (optional)").fill(f"{name.title()} Example")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password again").fill(password)
    page.get_by_role("button", name="Add user").click()
    assert page.url.endswith(f"/console/users/{name}")
    assert page.locator(".flash").inner_text() == f"User {name} added."
    page.get_by_label("Region").select_option(REGION)
    page.get_by_role("button", name="Grant access").click()
    assert "granted" in page.locator(".flash").inner_text()


def log_in(ac: httpx.Client, user: str, password: str = PASSWORD) -> dict[str, Any]:
    headers = {"user": user, "password": password, "orgId": ORG}
    body: dict[str, Any] = ac.post(f"{BASE}/tokens", headers=headers).json()
    return body


def region_token(ac: httpx.Client, user: str, password: str = PASSWORD) -> str:
    body = log_in(ac, user, password)
    assert body["code"] == "0", body
    return next(e["token"] for e in body["data"] if e["clusterId"] == REGION)


def state(ac: httpx.Client, token: str) -> str:
    code: str = ac.get(f"{BASE}/tokens/state", headers={"token": token}).json()["code"]
    return code


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """``Set-Cookie`` headers by cookie name, and by role (``session``, ``signin``,
    ``flash``) whatever the name's prefix."""
    found = {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}
    for name, header in list(found.items()):
        role = name.removeprefix("__Host-").removeprefix("__Secure-").removeprefix("acauth_")
        found[{"console": "session", "console_signin": "signin"}.get(role, role)] = header
    return found


# -- flows, JavaScript off -----------------------------------------------------------------


def test_pages_send_a_browser_without_a_session_to_sign_in(browser: Any, live: LiveServer) -> None:
    tab = Tab(browser, live.base_url, java_script_enabled=False)
    tab.goto("/console/users?q=demo")
    assert tab.page.url == f"{live.base_url}/console/sign-in?next=/console/users%3Fq%3Ddemo"
    tab.page.get_by_label("Operator name").fill(demo.OPERATOR)
    tab.page.get_by_label("Password").fill(demo.OPERATOR_PASSWORD)
    tab.page.get_by_role("button", name="Sign in").click()
    tab.page.wait_for_url(f"{live.base_url}/console/users?q=demo")
    tab.page.get_by_role("button", name="Sign out").click()
    tab.page.wait_for_url(f"{live.base_url}/console/sign-in")
    assert tab.flash() == "Signed out."
    tab.goto("/console/users")
    assert tab.page.url.startswith(f"{live.base_url}/console/sign-in")
    tab.close()


def test_a_wrong_password_and_a_lockout_are_told_politely(browser: Any, live: LiveServer) -> None:
    tab = Tab(browser, live.base_url, java_script_enabled=False)
    tab.goto("/console/sign-in")
    tab.refusals.add("/console/sign-in")  # answered 401, then 429
    tab.page.get_by_label("Operator name").fill(demo.OPERATOR)
    tab.page.get_by_label("Password").fill("not-the-password")
    with tab.page.expect_response(lambda r: r.request.method == "POST") as answer:
        tab.page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    assert tab.page.get_by_role("alert").inner_text() == (
        "Wrong name or password, or this operator is disabled."
    )
    assert tab.page.get_by_label("Operator name").input_value() == demo.OPERATOR
    # An unknown name is counted like a known one, until it is locked.
    statuses = []
    for _ in range(8):
        tab.page.get_by_label("Operator name").fill("mallory")
        tab.page.get_by_label("Password").fill("guess")
        with tab.page.expect_response(lambda r: r.request.method == "POST") as answer:
            tab.page.get_by_role("button", name="Sign in").click()
        statuses.append(answer.value.status)
        if answer.value.status == 429:
            break
    assert statuses[-1] == 429, statuses
    assert (
        tab.page.get_by_role("alert")
        .inner_text()
        .startswith("Too many failed attempts for this name. Try again in")
    )
    tab.close()


def test_a_user_added_in_the_console_logs_in_and_is_refused_once_disabled(
    page: Any, ac: httpx.Client
) -> None:
    add_user(page, "alice")
    token = region_token(ac, "alice")
    assert state(ac, token) == "0"

    page.get_by_role("button", name="Disable user").click()
    assert page.locator(".flash").inner_text() == "User alice disabled."
    assert page.locator("h1 .badge").inner_text() == "Disabled"
    wait_until(lambda: state(ac, token) != "0", within=2, what="the token is refused")
    assert state(ac, token) == "10008"

    page.get_by_role("button", name="Enable user").click()
    assert page.locator(".flash").inner_text() == "User alice enabled."
    wait_until(lambda: state(ac, token) == "0", within=2, what="the token is honoured again")


def test_tokens_are_revoked_one_by_one_or_all_at_once(page: Any, ac: httpx.Client) -> None:
    add_user(page, "bob")
    first, second = region_token(ac, "bob"), region_token(ac, "bob")
    page.reload()
    rows = page.locator("tr", has_text=tokens.unverified_claims(first).jti)
    rows.get_by_role("button", name=re.compile("^Revoke")).click()
    assert page.locator(".flash").inner_text() == "Token revoked."
    wait_until(lambda: state(ac, first) == "10008", within=2, what="the first token is refused")
    assert state(ac, second) == "0"

    page.get_by_role("button", name="Revoke all tokens of bob").click()
    assert re.fullmatch(r"\d+ token\(s\) of bob revoked\.", page.locator(".flash").inner_text())
    wait_until(lambda: state(ac, second) == "10008", within=2, what="every token is refused")
    assert page.get_by_text("No live tokens.").is_visible()


def test_a_locked_user_is_unlocked_and_a_password_reset(page: Any, ac: httpx.Client) -> None:
    add_user(page, "dave")
    for _ in range(3):
        assert log_in(ac, "dave", "wrong-password")["code"] == "10009"
    assert log_in(ac, "dave")["code"] == "10009"  # locked, the right password too

    page.goto("/console/")
    page.get_by_role("button", name="Unlock dave").click()
    assert page.locator(".flash").inner_text() == "Login lockout cleared."
    assert region_token(ac, "dave")

    page.goto("/console/users/dave")
    page.get_by_label("New password", exact=True).fill("a-brand-new-password")
    page.get_by_label("New password again").fill("a-brand-new-password")
    page.get_by_role("button", name="Reset password").click()
    assert page.locator(".flash").inner_text() == "Password of dave reset."
    assert region_token(ac, "dave", "a-brand-new-password")
    assert log_in(ac, "dave")["code"] == "10009"


def test_deleting_a_user_needs_their_name_typed(page: Any, console: Tab) -> None:
    add_user(page, "carol")
    page.get_by_role("link", name="Delete carol…").click()
    assert page.url.endswith("/console/users/carol/delete")
    page.get_by_label("Type carol to confirm").fill("carl")
    page.get_by_role("button", name="Delete user").click()
    assert page.locator(".flash.error").inner_text() == "type the user's name to confirm"
    page.goto("/console/users/carol")  # still there
    page.get_by_role("link", name="Delete carol…").click()
    page.get_by_label("Type carol to confirm").fill("carol")
    page.get_by_role("button", name="Delete user").click()
    assert page.url.endswith("/console/users")
    assert page.locator(".flash").inner_text() == "User carol deleted."
    assert console.goto("/console/users/carol", status=404).get_by_role("heading").inner_text() == (
        "Not found"
    )


def test_a_new_access_key_shows_its_secret_once_with_a_credentials_file(
    page: Any, ac: httpx.Client, live: LiveServer
) -> None:
    page.goto("/console/keys")
    page.get_by_label("User", exact=True).fill("demo")
    page.get_by_label("Organisation").select_option(ORG)
    page.get_by_role("button", name="Create access key").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Access key created"
    access_key = page.locator("#access-key").inner_text()
    secret_key = page.locator("#secret-key").inner_text()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the credentials file").click()
    assert download.value.suggested_filename == f"acauth-{access_key}.json"
    path = download.value.path()
    assert json.loads(path.read_text()) == {
        "user": "demo",
        "access_key": access_key,
        "secret_key": secret_key,
        "org_id": ORG,
    }
    ts = int(live.clock.now_ms() / 1000)
    headers = signed_headers(ts, ak=access_key, sk=secret_key)
    assert ac.post("/api/user/v3/tokens", headers=headers).json()["code"] == "0"

    for later in ("/console/keys", "/console/users/demo", "/console/audit"):
        page.goto(later)
        assert secret_key not in page.content(), later
    assert access_key in page.goto("/console/keys?user=demo").text()


def admin_api_me(live: LiveServer, key: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.get(f"{live.base_url}/admin/api/v1/me", headers=headers)


def test_operators_are_added_keyed_disabled_and_deleted(page: Any, live: LiveServer) -> None:
    page.goto("/console/operators")
    page.get_by_label("Name").fill("olivia")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Add operator").click()
    assert page.url.endswith("/console/operators/olivia")
    assert page.locator(".flash").inner_text() == "Operator olivia added."

    page.get_by_label("Label").fill("ci runner")
    page.get_by_role("button", name="Create API key").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Operator key created"
    key = page.locator("#operator-key").inner_text()
    key_id = page.locator("#key-id").inner_text()
    assert admin_api_me(live, key).json() == {"operator": "olivia", "via": "key"}
    page.get_by_role("link", name="Back to olivia").click()
    row = page.locator("tr", has_text=key_id)
    assert "ci runner" in row.inner_text() and key not in page.content()

    page.get_by_role("button", name="Disable operator").click()
    assert page.locator(".flash").inner_text() == "Operator olivia disabled."
    assert admin_api_me(live, key).status_code == 401
    page.get_by_role("button", name="Enable operator").click()
    assert page.locator(".flash").inner_text() == "Operator olivia enabled."
    assert admin_api_me(live, key).status_code == 200

    page.locator("tr", has_text=key_id).get_by_role("button", name=re.compile("^Revoke")).click()
    assert page.locator(".flash").inner_text() == f"Key {key_id} revoked."
    assert page.get_by_text("No API keys.").is_visible()
    assert admin_api_me(live, key).status_code == 401

    page.get_by_role("link", name="Delete olivia…").click()
    page.get_by_label("Type olivia to confirm").fill("olivi")
    page.get_by_role("button", name="Delete operator").click()
    assert page.locator(".flash.error").inner_text() == "type the operator's name to confirm"
    page.get_by_label("Type olivia to confirm").fill("olivia")
    page.get_by_role("button", name="Delete operator").click()
    assert page.url.endswith("/console/operators")
    assert page.locator(".flash").inner_text() == "Operator olivia deleted."
    assert page.locator("td", has_text="olivia").count() == 0


def test_an_operator_cannot_disable_or_delete_themselves(live: LiveServer) -> None:
    with http_console(live.base_url) as (client, csrf):
        own = client.get("/console/operators/admin")
        assert own.status_code == 200 and "Disable operator" not in own.text
        for path, data in (
            ("/console/operators/admin/enabled", {"enabled": "false"}),
            ("/console/operators/admin/delete", {"confirm": "admin"}),
        ):
            refused = client.post(path, data={"csrf": csrf, **data}, follow_redirects=True)
            assert "you cannot" in refused.text and "yourself" in refused.text, path
        assert client.get("/console/operators/admin/delete").status_code == 400
        assert "Signed in as" in client.get("/console/operators").text  # still there, enabled
        for path, data in (
            ("/console/operators", {"name": "mallory", "password": PASSWORD, "confirm": PASSWORD}),
            ("/console/operators/admin/keys", {"label": "stolen"}),
        ):
            assert client.post(path, data=data).status_code == 403, path  # no CSRF token
        assert "mallory" not in client.get("/console/operators").text
        assert client.get("/console/operators/nobody").status_code == 404


def test_the_audit_is_filtered_and_exported_as_csv(page: Any) -> None:
    add_user(page, "erin")
    page.goto("/console/audit")
    page.get_by_label("User").fill("erin")
    page.get_by_label("Kind").fill("admin.user")
    page.get_by_role("button", name="Filter").click()
    assert "user=erin" in page.url
    kinds = page.locator("table.audit tbody td:nth-child(2)").all_inner_texts()
    assert kinds == ["admin.user_added"]

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(r["kind"], r["user"], r["actor"]) for r in rows] == [
        ("admin.user_added", "erin", f"operator:{demo.OPERATOR}")
    ]

    page.get_by_label("Since").fill("2026-01-01T00:00")
    page.get_by_label("Until").fill("2026-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_text("No audit records match.").is_visible()


def test_users_and_the_audit_are_paged(page: Any, console: Tab) -> None:
    for path, rows in (
        ("/console/users?limit=1", "tbody tr"),
        ("/console/audit?limit=2", "tbody tr"),
    ):
        page.goto(path)
        first = page.locator(rows).all_inner_texts()
        page.get_by_role("link", name="Next page").click()
        second = page.locator(rows).all_inner_texts()
        assert len(first) == len(second) == int(path[-1]) and first != second, path
        assert "limit=" in page.url and "cursor=" in page.url
        page.get_by_role("link", name="First page").click()
        assert page.locator(rows).all_inner_texts() == first
    console.goto("/console/audit?limit=0", status=400)
    assert page.get_by_role("alert").inner_text() == "limit must be between 1 and 500"


def test_a_failed_action_says_why(page: Any, console: Tab) -> None:
    page.goto("/console/users")
    page.get_by_label("Name", exact=True).fill("frank")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Add user").click()
    assert page.url.endswith("/console/users")
    assert page.locator(".flash.error").inner_text() == "password must be at least 8 characters"
    console.goto("/console/audit?since=yesterday", status=400)
    assert "since: not a date and time" in page.get_by_role("alert").inner_text()


# -- bounded pages ----------------------------------------------------------------------------

JTI = re.compile(r'name="jti" value="([^"]+)"')
NEXT = re.compile(r'<a href="([^"]+)" rel="next">Next page</a>')


def test_live_tokens_of_a_user_are_paged(live: LiveServer, ac: httpx.Client) -> None:
    for _ in range(2):
        assert log_in(ac, "demo", "demo-password")["code"] == "0"  # three tokens each
    with http_console(live.base_url) as (client, _):
        pages: list[list[str]] = []
        url: str | None = "/console/users/demo?limit=2"
        while url is not None and len(pages) < 50:
            shown = client.get(url)
            assert shown.status_code == 200
            pages.append(JTI.findall(shown.text))
            found = NEXT.search(shown.text)
            url = html.unescape(found[1]) if found else None
        seen = [jti for page in pages for jti in page]
        assert len(pages) >= 3 and all(len(page) == 2 for page in pages[:-1]), pages
        assert len(seen) == len(set(seen)) >= 6
        for bad, message in (
            ("limit=0", "limit must be between 1 and 500"),
            ("cursor=x", "cursor"),
        ):
            refused = client.get(f"/console/users/demo?{bad}")
            assert refused.status_code == 400 and message in refused.text, bad


def test_the_keys_page_names_owners_without_loading_every_user(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def every_user(self: AdminService) -> list[Any]:
        raise AssertionError("the keys page loaded every user")

    monkeypatch.setattr(AdminService, "list_users", every_user)  # the server runs in-process
    with http_console(live.base_url) as (client, _):
        shown = client.get("/console/keys")
    assert shown.status_code == 200
    assert '<td data-label="User"><a href="/console/users/demo">demo</a></td>' in shown.text


# -- hostile input: control characters never reach the store -----------------------------

HOSTILE_NAMES = {
    "nul": ("a\x00b", 400),
    "escape": ("\x1b[31mred\x1b[0m", 400),
    "newline": ("x\ny", 400),
    "bidi-override": ("evil\u202egnp.exe", 303),
}


def test_names_with_control_or_bidi_characters_are_refused(live: LiveServer) -> None:
    """A control character anywhere in a form is a 400 page; a bidirectional override
    in a name is the service's refusal, told on the page the form came from."""
    with http_console(live.base_url) as (client, csrf):
        for case, (name, status) in HOSTILE_NAMES.items():
            form = {"csrf": csrf, "name": name, "password": PASSWORD, "confirm": PASSWORD}
            answer = client.post("/console/users", data=form)
            assert answer.status_code == status, case
            if status == 400:
                assert "<h1>Bad form</h1>" in answer.text, case
                assert "Signed in as" in answer.text, case  # the page keeps its bearings
            else:
                assert answer.headers["location"] == "/console/users", case
                shown = client.get("/console/users").text
                assert '<div class="flash error" role="alert">name must not contain' in shown
            missing = client.get(f"/console/users/{quote(name, safe='')}")
            assert missing.status_code == 404, case
        for path, data in (
            ("/console/orgs", {"org_id": "org\x00"}),
            ("/console/keys", {"user": "demo\x07", "org_id": ""}),
            ("/console/users/demo/password", {"password": "pass\x00word", "confirm": "x"}),
        ):
            answer = client.post(path, data={"csrf": csrf, **data})
            assert answer.status_code == 400 and "<h1>Bad form</h1>" in answer.text, path
        # A text area keeps its line breaks.
        region = {"csrf": csrf, "cluster_id": "30001", "name": "Hostile North"}
        assert client.post("/console/regions", data=region).status_code == 303
        urls = {
            "cluster_id": "30001",
            "kind": "hpc",
            "urls": "https://a.example\r\nhttps://b.example",
        }
        set_urls = client.post("/console/regions/urls", data={"csrf": csrf, **urls})
        assert set_urls.status_code == 303
        assert "hpc URLs of region 30001 set (2)." in client.get("/console/regions").text


def test_control_characters_in_paths_queries_and_forms_are_refused(live: LiveServer) -> None:
    probe_hostile(live.base_url)  # on PostgreSQL too: test_admin_api


# -- HTTP rules: CSRF, cookies, headers -------------------------------------------------------


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(
    live: LiveServer,
) -> None:
    with http_console(live.base_url) as (client, csrf):
        url = "/console/users/demo/revoke"
        cases = {
            "no token": ({}, {}),
            "wrong token": ({"csrf": "x" * 43}, {}),
            "foreign origin": ({"csrf": csrf}, {"Origin": "http://evil.example"}),
            "cross-site fetch": ({"csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        }
        for case, (data, headers) in cases.items():
            refused = client.post(url, data=data, headers=headers)
            assert refused.status_code == 403, case
            assert refused.headers["content-type"].startswith("text/html"), case
            assert "<h1>Request refused</h1>" in refused.text, case
        done = client.post(url, data={"csrf": csrf}, headers={"Origin": live.base_url})
        assert done.status_code == 303 and done.headers["location"] == "/console/users/demo"
        # The sign-in form carries its own token (there is no session yet).
        with httpx.Client(base_url=live.base_url) as anonymous:
            answer = anonymous.post(
                "/console/sign-in",
                data={"name": demo.OPERATOR, "password": demo.OPERATOR_PASSWORD},
            )
            assert answer.status_code == 403 and "acauth_console=" not in str(answer.headers)


def sign_in_as(
    base_url: str, host: str | None = None, cookie: str = ""
) -> tuple[httpx.Response, httpx.Response]:
    """The sign-in form and the answer to its sending, with ``Host: host`` and ``cookie``
    (a ``Cookie`` header) sent along."""
    headers = {"Host": host} if host else {}
    with httpx.Client(base_url=base_url, headers=headers) as client:
        form = client.get("/console/sign-in")
        name, _, rest = set_cookies(form)["signin"].partition("=")
        token = rest.split(";")[0]
        sent = "; ".join(c for c in (f"{name}={token}", cookie) if c)
        answer = client.post(
            "/console/sign-in",
            data={"csrf": token, "name": demo.OPERATOR, "password": demo.OPERATOR_PASSWORD},
            headers={"Cookie": sent},
        )
        assert answer.status_code == 303, answer.text
        return form, answer


def session_of(signed: tuple[httpx.Response, httpx.Response]) -> str:
    """The session cookie a sign-in set."""
    return set_cookies(signed[1])["session"].split(";")[0].split("=", 1)[1]


@pytest.mark.parametrize(
    ("host", "secure"),
    [(None, False), ("localhost:8080", False), ("admin.example", True)],
    ids=["127.0.0.1", "localhost", "other-host"],
)
def test_cookies_are_httponly_strict_and_secure_unless_plain_http_on_loopback(
    live: LiveServer, host: str | None, secure: bool
) -> None:
    form, answer = sign_in_as(live.base_url, host)
    session = set_cookies(answer)["session"]
    attributes = {a.strip().lower() for a in session.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes, session
    assert ("secure" in attributes) is secure, session
    assert "domain" not in session.lower()
    # Secure, the names carry the prefixes a browser honours only over HTTPS.
    assert session.startswith("__Host-acauth_console=" if secure else "acauth_console=")
    assert set_cookies(form)["signin"].startswith(
        "__Secure-acauth_console_signin=" if secure else "acauth_console_signin="
    )


def test_only_the_cookie_name_fitting_the_scheme_is_a_session(live: LiveServer) -> None:
    """Over HTTPS (here: a host that is not loopback) only ``__Host-acauth_console`` is
    read, by the console and the admin API alike; on plain-HTTP loopback only
    ``acauth_console``."""
    loopback = session_of(sign_in_as(live.base_url))
    remote = session_of(sign_in_as(live.base_url, "admin.example"))

    def signed_in(host: str | None, cookie: str) -> tuple[bool, bool]:
        headers = {"Cookie": cookie, **({"Host": host} if host else {})}
        with httpx.Client(base_url=live.base_url, headers=headers) as client:
            page = client.get("/console/users")
            api = client.get("/admin/api/v1/me")
        assert api.status_code in (200, 401), api.text
        return page.status_code == 200, api.status_code == 200

    assert signed_in(None, f"acauth_console={loopback}") == (True, True)
    assert signed_in(None, f"__Host-acauth_console={loopback}") == (False, False)
    assert signed_in("admin.example", f"__Host-acauth_console={remote}") == (True, True)
    assert signed_in("admin.example", f"acauth_console={remote}") == (False, False)


def test_signing_in_ends_the_session_the_browser_held(live: LiveServer) -> None:
    before = session_of(sign_in_as(live.base_url))
    after = session_of(sign_in_as(live.base_url, cookie=f"acauth_console={before}"))
    assert after != before
    with httpx.Client(base_url=live.base_url) as client:
        old = client.get("/console/users", headers={"Cookie": f"acauth_console={before}"})
        assert old.status_code == 303 and old.headers["location"].startswith("/console/sign-in")
        new = client.get("/console/users", headers={"Cookie": f"acauth_console={after}"})
        assert new.status_code == 200


def _request(scope_headers: dict[str, str], peer: str, scheme: str = "http") -> Request:
    headers = [(k.lower().encode(), v.encode()) for k, v in scope_headers.items()]
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": "/console",
        "query_string": b"",
        "headers": headers,
        "client": (peer, 50000),
        "server": ("127.0.0.1", 8080),
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "peer", "scheme", "trusted", "secure"),
    [
        ({"host": "localhost:8080"}, "127.0.0.1", "http", "", False),
        ({"host": "localhost:8080"}, "127.0.0.1", "https", "", True),
        ({"host": "admin.example"}, "127.0.0.1", "http", "", True),
        ({"host": "localhost", "x-forwarded-proto": "https"}, "127.0.0.1", "http", "", False),
        (
            {"host": "localhost", "x-forwarded-proto": "https"},
            "127.0.0.1",
            "http",
            "127.0.0.1",
            True,
        ),
        (
            {"host": "localhost", "x-forwarded-proto": "http, https"},
            "10.0.0.5",
            "http",
            "10.0.0.0/8",
            True,
        ),
        (
            {"host": "localhost", "x-forwarded-proto": "http"},
            "127.0.0.1",
            "http",
            "::1, 127.0.0.1",
            False,
        ),
        (
            {"host": "localhost", "x-forwarded-proto": "https"},
            "10.9.9.9",
            "http",
            "10.0.0.1",
            False,
        ),
    ],
    ids=[
        "loopback-http",
        "loopback-tls",
        "other-host",
        "forwarded-by-anyone",
        "forwarded-by-trusted-proxy",
        "last-hop-of-a-chain",
        "trusted-proxy-says-http",
        "untrusted-peer",
    ],
)
def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    headers: dict[str, str], peer: str, scheme: str, trusted: str, secure: bool
) -> None:
    request = _request(headers, peer, scheme)
    cookies = Cookies.of(request, ClientAddresses(parse_networks(trusted)))
    assert cookies.secure is secure
    assert cookies.name("acauth_console") == (
        "__Host-acauth_console" if secure else "acauth_console"
    )


def test_the_browser_holds_the_session_cookie_as_httponly_and_strict(console: Tab) -> None:
    (session,) = [c for c in console.context.cookies() if c["name"] == "acauth_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]
    assert session["path"] == "/"


def test_pages_carry_the_security_headers(live: LiveServer) -> None:
    with http_console(live.base_url) as (client, _):
        for path in ("/console/sign-in", "/console", "/console/users/demo", "/console/nope"):
            response = client.get(path)
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "script-src" not in csp, path
            assert response.headers["x-frame-options"] == "DENY", path
            assert response.headers["referrer-policy"] == "no-referrer", path
            assert response.headers["cache-control"] == "no-store", path
        css = client.get("/console/static/console.css")
        assert css.headers["content-type"].startswith("text/css")
        assert css.headers["x-content-type-options"] == "nosniff"


# -- every page, in a browser with JavaScript on ----------------------------------------------

WIDTHS = {"desktop": (1280, 900), "phone": (375, 812)}


def check_page(page: Any, width: int) -> list[str]:
    """What is wrong with the page shown: labels, headings, contrast, language, width."""
    problems = [f"no label: {html}" for html in page.evaluate(UNLABELLED)]
    problems += heading_problems(page.evaluate(HEADINGS))
    problems += low_contrast(page)
    if page.evaluate("document.documentElement.lang") != "en":
        problems.append("no lang attribute")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll > width:
        problems.append(f"wider than the screen: {scroll} px > {width} px")
    return problems


@pytest.mark.parametrize("device", list(WIDTHS))
def test_every_page_is_accessible_and_fits_the_screen(
    browser: Any, live: LiveServer, device: str
) -> None:
    """Each page at desktop and phone width: checked, and kept as a screenshot to look at."""
    width, height = WIDTHS[device]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"*-{device}.png"):
        old.unlink()
    tab = Tab(browser, live.base_url, viewport={"width": width, "height": height})
    page = tab.page
    problems: dict[str, list[str]] = {}
    taken: list[str] = []

    def shoot(name: str) -> None:
        taken.append(f"{name}-{device}.png")
        page.screenshot(path=ARTIFACTS / f"{name}-{device}.png", full_page=True)
        found = check_page(page, width)
        if found:
            problems[name] = found

    tab.goto("/console/sign-in")
    shoot("sign-in")
    tab.sign_in()
    tab.goto("/console")
    if not page.get_by_role("button", name="Unlock ghost").count():
        with httpx.Client(base_url=live.base_url) as ac:
            for _ in range(3):  # a name locked out, for the overview to list
                log_in(ac, "ghost", "wrong-password")
            log_in(ac, "demo", "demo-password")  # live tokens, for the user page to list
        tab.goto("/console")
    assert page.get_by_role("button", name="Unlock ghost").is_visible()
    shoot("overview")
    for name, path in [
        ("users", "/console/users"),
        ("user", "/console/users/demo"),
        ("user-tokens-paged", "/console/users/demo?limit=1"),
        ("user-delete", "/console/users/demo/delete"),
        ("orgs", "/console/orgs"),
        ("regions", "/console/regions"),
        ("keys", "/console/keys"),
        ("audit", "/console/audit?limit=10"),
    ]:
        tab.goto(path)
        shoot(name)
    tab.goto("/console/regions")
    page.locator("details summary").first.click()
    shoot("regions-urls-form")

    tab.goto("/console/users")
    page.get_by_label("Name", exact=True).fill("zed")
    page.get_by_role("button", name="Add user").click()  # passwords missing: refused
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Add user").click()
    assert page.locator(".flash.error").is_visible()
    shoot("users-refused")

    tab.goto("/console/keys")
    page.get_by_label("User", exact=True).fill("demo")
    page.get_by_role("button", name="Create access key").click()
    shoot("key-created")

    tab.goto("/console/operators")
    if not page.get_by_role("link", name="rita").count():
        page.get_by_label("Name").fill("rita")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Add operator").click()
    tab.goto("/console/operators")
    shoot("operators")
    tab.goto("/console/operators/rita")
    page.get_by_label("Label").fill(f"portal ({device})")
    page.get_by_role("button", name="Create API key").click()
    shoot("operator-key-created")
    tab.goto("/console/operators/rita")
    shoot("operator")
    tab.goto("/console/operators/rita/delete")
    shoot("operator-delete")

    tab.goto("/console/no-such-page", status=404)
    shoot("not-found")
    tab.goto("/console/users/demo")
    tab.refusals.add("/console/users/demo/unlock")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'x')")
    page.get_by_role("button", name="Clear login lockout").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Request refused"
    shoot("refused")

    tab.close()
    assert problems == {}
    assert sorted(p.name for p in ARTIFACTS.glob(f"*-{device}.png")) == sorted(taken)


def test_the_console_is_usable_with_the_keyboard(browser: Any, live: LiveServer) -> None:
    tab = Tab(browser, live.base_url)
    tab.sign_in()
    page = tab.page
    tab.goto("/console")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "(() => { const e = document.activeElement, s = getComputedStyle(e);"
        " return [e.textContent, s.outlineStyle, s.outlineWidth, s.boxShadow]; })()"
    )
    assert focused[0] == "Skip to main content"
    # The focus ring: an amber outline (seen on the dark header) around a dark ring
    # (seen on white).
    assert focused[1] == "solid" and focused[2] == "3px", focused
    ring = re.match(r"(rgba?\([^)]*\))", focused[3])
    assert ring and contrast(ring[1], "rgb(255, 255, 255)") >= 3, focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    tab.goto("/console")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Users":
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/users")
    page.get_by_label("Search by name, full name or e-mail").focus()
    page.keyboard.type("demo")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/users?q=demo")
    assert page.get_by_role("link", name="demo", exact=True).is_visible()
    tab.close()
