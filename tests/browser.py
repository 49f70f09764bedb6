"""The console's test helpers: a real browser, and an httpx client signed in.

The browser is Debian's Chromium driven by Playwright: Playwright's own browser
download does not work everywhere (air-gapped machines, CI), so the tests launch
the system's ``chromium``. Without it (or without the ``playwright`` package)
they skip with the reason; under ``CI=true`` they fail.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from acauth import demo

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console"
"""Where the screenshots of every console page are kept (git-ignored)."""

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str:
    """The Chromium to drive; skips (fails under CI=true) when there is none.

    ``ACAUTH_TEST_CHROMIUM`` names another executable.
    """
    reason = ""
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        reason = "the playwright package is not installed (pip install -e '.[test]')"
    chosen = os.environ.get("ACAUTH_TEST_CHROMIUM")
    found = next((p for p in ([chosen] if chosen else CANDIDATES) if os.access(p, os.X_OK)), None)
    if found is None and not chosen:
        found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not reason and found is None:
        reason = (
            f"ACAUTH_TEST_CHROMIUM={chosen} is not an executable"
            if chosen
            else "no Chromium found (apt-get install chromium, or set ACAUTH_TEST_CHROMIUM)"
        )
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)
    assert found is not None
    return found


# -- the console over HTTP, without a browser -----------------------------------------

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@contextmanager
def http_console(base_url: str) -> Iterator[tuple[httpx.Client, str]]:
    """An httpx client signed in to the console, and the session's CSRF token."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        form = client.get("/console/sign-in")
        token = CSRF.search(form.text)
        assert token is not None
        signed = client.post(
            "/console/sign-in",
            data={"csrf": token[1], "name": demo.OPERATOR, "password": demo.OPERATOR_PASSWORD},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/console"
        found = CSRF.search(client.get("/console/users").text)
        assert found is not None
        yield client, found[1]


HOSTILE_REQUESTS: list[tuple[str, str, dict[str, str] | None, int]] = [
    ("GET", "/console/users/a%00b", None, 404),
    ("GET", "/console/users/%1B%5B31m", None, 404),
    ("GET", "/console/users/%FF%FE", None, 404),
    ("GET", "/console/users/a%00b/delete", None, 404),
    ("POST", "/console/users/a%00b/status", {"status": "Disable"}, 404),
    ("GET", "/console/users?q=%00", None, 400),
    ("GET", "/console/users?cursor=%00", None, 400),
    ("GET", "/console/keys?user=a%00", None, 400),
    ("GET", "/console/audit?user=%00", None, 400),
    ("GET", "/console/audit?kind=%1B", None, 400),
    ("GET", "/console/audit.csv?user=%00", None, 400),
    ("POST", "/console/users", {"name": "a\x00b", "password": "p" * 12}, 400),
    ("POST", "/console/keys", {"user": "demo\x00"}, 400),
    ("POST", "/console/orgs", {"org_id": "\x00"}, 400),
]
"""Requests whose path, query or form holds a control character (NUL among them)."""


def probe_hostile(base_url: str) -> None:
    """Each of :data:`HOSTILE_REQUESTS` answers its status with an HTML page, not a 500."""
    with http_console(base_url) as (client, csrf):
        for method, path, form, status in HOSTILE_REQUESTS:
            data = {"csrf": csrf, **form} if form is not None else None
            answer = client.request(method, path, data=data)
            assert answer.status_code == status, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html"), path
            assert "Something went wrong" not in answer.text, path


# -- accessibility checks run in the page ---------------------------------------------

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden')
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML)"""

HEADINGS = """() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
  .map(h => Number(h.tagName[1]))"""

# Every element with its own visible text: its colour and the first opaque background
# behind it (walking up the tree). Text inside a closed <details> is not shown.
TEXT_COLOURS = """() => {
  const out = [];
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== 'transparent' && !c.endsWith(', 0)')) return c;
    }
    return 'rgb(255, 255, 255)';
  };
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility()) continue;
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) continue;
    out.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
              fg: getComputedStyle(el).color, bg: bg(el)});
  }
  return out;
}"""


def _rgb(css: str) -> tuple[float, float, float]:
    parts = [float(x) for x in re.findall(r"[\d.]+", css)[:3]]
    return parts[0], parts[1], parts[2]


def _luminance(css: str) -> float:
    def channel(v: float) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """The WCAG contrast ratio of two CSS ``rgb(...)`` colours."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def low_contrast(page: Any, minimum: float = 4.5) -> list[str]:
    """The texts of ``page`` whose contrast with their background is below ``minimum``."""
    return [
        f"{t['tag']} {t['text']!r}: {t['fg']} on {t['bg']} = {contrast(t['fg'], t['bg']):.2f}"
        for t in page.evaluate(TEXT_COLOURS)
        if contrast(t["fg"], t["bg"]) < minimum
    ]


def heading_problems(levels: list[int]) -> list[str]:
    """One ``h1`` first, and no level skipped on the way down."""
    problems = []
    if levels.count(1) != 1 or (levels and levels[0] != 1):
        problems.append(f"one h1 first expected: {levels}")
    for before, after in itertools.pairwise(levels):
        if after > before + 1:
            problems.append(f"h{before} followed by h{after}")
    return problems
