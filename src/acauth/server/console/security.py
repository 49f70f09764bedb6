"""What keeps the console's forms safe: headers, cookie flags, origin and CSRF checks.

A session cookie is ``HttpOnly``, ``SameSite=Strict``, and ``Secure`` unless the
console is reached over plain HTTP on a loopback host; a Secure cookie carries
the ``__Host-`` prefix (``__Secure-`` for those scoped to ``/console``), so no
other site, subdomain or plain-HTTP page can plant one. An unsafe request from
another origin is refused, and so is a form without the session's CSRF token
(compared in constant time). Pages are never framed, cached, or sent a referrer.
No form field, query parameter or path segment may hold a control character.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from acauth.server.clients import ClientAddresses

PREFIX = "/console"
COOKIE = "acauth_console"
"""The session cookie's name over plain HTTP on loopback; ``__Host-acauth_console`` elsewhere."""
SIGN_IN_COOKIE = "acauth_console_signin"
"""The sign-in form's CSRF token, before there is a session (double submit)."""
FLASH_COOKIE = "acauth_console_flash"
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
MULTILINE = frozenset({"urls"})
"""The fields (text areas) whose value may hold line breaks and tabs."""

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """The request cannot be served as sent: an HTML page with ``status`` says why."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def forbidden(message: str) -> Refused:
    return Refused(403, "Request refused", message)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def from_trusted_proxy(request: Request, proxies: ClientAddresses) -> bool:
    """Whether the peer is one of the proxies of ``ACAUTH_TRUSTED_PROXIES``."""
    peer = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in proxies.trusted)


def is_https(request: Request, proxies: ClientAddresses) -> bool:
    """Whether the browser reached the console over HTTPS.

    Either this server answered TLS itself, or the request comes from a trusted
    proxy (``ACAUTH_TRUSTED_PROXIES``) whose ``X-Forwarded-Proto`` says ``https``
    (its last value: the one the nearest proxy wrote). From any other peer the
    header is ignored: a client could write it to make the console take a plain
    connection for a secure one.
    """
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto")
    if forwarded is None or not from_trusted_proxy(request, proxies):
        return False
    return forwarded.rsplit(",", 1)[-1].strip().lower() == "https"


def secure_cookies(request: Request, proxies: ClientAddresses) -> bool:
    """Cookies are ``Secure`` unless the console is reached over plain HTTP on loopback.

    On loopback (the demo, a console reached through an SSH tunnel) nothing
    leaves the machine; anywhere else the cookies never travel in clear. HTTPS
    behind a proxy counts only as :func:`is_https` allows.
    """
    return is_https(request, proxies) or not is_loopback(request.url.hostname)


@dataclass(frozen=True, slots=True)
class Cookies:
    """The console's cookies for one request: Secure or not, and named to match.

    A Secure cookie's name carries ``__Host-`` (path ``/``) or ``__Secure-`` (a
    narrower path): a browser accepts such a cookie only over HTTPS, with
    ``Secure``, and, for ``__Host-``, from this very host. Only the name fitting
    the request is read, so over HTTPS a cookie planted without the prefix (by a
    plain-HTTP page or a sibling domain) is never taken for the session.
    """

    request: Request
    secure: bool

    @classmethod
    def of(cls, request: Request, proxies: ClientAddresses) -> Cookies:
        return cls(request, secure_cookies(request, proxies))

    def name(self, base: str, path: str = "/") -> str:
        if not self.secure:
            return base
        return ("__Host-" if path == "/" else "__Secure-") + base

    def get(self, base: str, path: str = "/") -> str:
        return self.request.cookies.get(self.name(base, path), "")

    def session(self) -> str:
        """The console session's cookie as sent, or ``""``."""
        return self.get(COOKIE)

    def set(self, response: Response, base: str, value: str, max_age: int, path: str = "/") -> None:
        response.set_cookie(
            self.name(base, path),
            value,
            max_age=max_age,
            path=path,
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear(self, response: Response, base: str, path: str = "/") -> None:
        self.set(response, base, "", 0, path)


def same_origin(request: Request) -> bool:
    """False if the browser says the request comes from another origin.

    ``Sec-Fetch-Site`` is the browser's own word (a page cannot set it). Where it
    is present, ``Origin`` may be ``null`` for our own forms: with
    ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` on a form's
    POST. Without it (older browsers), ``Origin``, when sent, must be this host.
    """
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None and site not in ("same-origin", "none"):
        return False
    if origin is None or (site is not None and origin == "null"):
        return True
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def tokens_match(sent: str, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


def has_control(text: str, *, lines: bool = False) -> bool:
    """Whether ``text`` holds a control character (NUL, ESC, DEL…); ``lines``: bar line
    breaks and tabs."""
    allowed = "\t\r\n" if lines else ""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form (the only kind the console's pages send), bounded in size.

    A field holding a control character is refused (400): no name, password or
    filter has one, and PostgreSQL cannot even store a NUL. Only the fields of
    :data:`MULTILINE` may hold line breaks and tabs.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "Form too large", "The form sent is too large.")
    if not body:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "Unsupported form", "The console accepts URL-encoded forms only.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "Bad form", "The form sent could not be read.") from None
    for key, value in pairs:
        if has_control(key) or has_control(value, lines=key in MULTILINE):
            raise Refused(
                400,
                "Bad form",
                "A field of the form holds a control character (such as NUL or a line"
                " break); none of the console's fields accepts one.",
            )
    return dict(pairs)


def check_address(request: Request) -> None:
    """Refuse a query parameter (400) or a path segment (404) holding a control character.

    No name or filter holds one; refused here, it never reaches the store
    (PostgreSQL refuses a NUL with an error of its own).
    """
    for key, value in request.query_params.multi_items():
        if has_control(key) or has_control(value):
            raise Refused(
                400, "Bad request", "The address holds a control character; no filter accepts one."
            )
    for raw in request.path_params.values():
        try:
            segment: str | None = unquote(str(raw), errors="strict")
        except UnicodeDecodeError:
            segment = None  # not UTF-8 once percent-decoded: no name is
        if segment is None or has_control(segment):
            raise Refused(
                404, "Not found", "No name in the console holds a control character or bad UTF-8."
            )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def safe_next(target: str) -> str:
    """``target`` if it is a console page of this server, the overview otherwise."""
    ok = target == PREFIX or target.startswith(PREFIX + "/")
    if not ok or "//" in target or "\\" in target or any(ord(c) < 0x21 for c in target):
        return PREFIX
    return target
