"""Who a request comes from, and the checks that keep other sites out.

A login session can be presented two ways:

- ``Authorization: Bearer <token>``, for programs. A page on another site
  cannot make a browser send this header without a CORS preflight, which we
  never grant, so these requests need no CSRF token. When the header is
  present the cookie is ignored.
- the ``sessionid`` cookie (HttpOnly, SameSite=Lax, Secure under TLS), for
  browsers. A browser attaches it to requests another site makes too, so
  every unsafe request (POST, PUT, PATCH, DELETE) that carries it must also
  carry the ``csrftoken`` cookie's value in an ``X-CSRFToken`` header: the
  double-submit pattern Django's clients know. Another site can make the
  browser send our cookies but can neither read them nor set that header.

A known shortcoming of plain double submit: the CSRF token is not tied to
the session, so a site that can set cookies for our host (a sibling
subdomain under the same parent, or a man in the middle on plain HTTP) could
plant a csrftoken of its own choosing. Binding the token to the session
(an HMAC of the session token under a server key) would close that; serve
the game from a host with no untrusted subdomains until then.

Bodies must be declared ``application/json`` (avatars: ``image/png`` or
``image/jpeg``): an HTML form can only send urlencoded, multipart or
text/plain bodies, so a cross-site form post is refused before anything else.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ClientError

if TYPE_CHECKING:
    from .http import Request

SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_TTL = 365 * 86400  # seconds the csrftoken cookie is kept


def cookies(request: Request) -> dict[str, str]:
    """The request's cookies by name; the first of a repeated name wins."""
    found: dict[str, str] = {}
    for part in request.headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip().strip('"')
    return found


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def session_token(request: Request) -> tuple[str | None, bool]:
    """The session token presented, and whether it came by cookie."""
    if "authorization" in request.headers:
        return bearer_token(request), False
    token = cookies(request).get(SESSION_COOKIE)
    return (token or None), token is not None


def check_request(request: Request, media_types: tuple[str, ...]) -> None:
    """Refuse an unsafe request with the wrong body type or no CSRF proof.

    ``media_types`` are the body types the endpoint takes. The body type is
    checked whenever a body or a Content-Type is sent; the CSRF token
    whenever the session cookie is what authenticates the request.
    """
    if request.method not in UNSAFE_METHODS:
        return
    declared = request.headers.get("content-type")
    if request.body or declared is not None:
        kind = (declared or "").split(";", 1)[0].strip().lower()
        if kind not in media_types:
            raise ClientError(
                "unsupported_media_type", "send " + " or ".join(media_types)
            )
    _, by_cookie = session_token(request)
    if by_cookie:
        check_csrf(request)


def check_csrf(request: Request) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        raise ClientError("csrf_failed", "X-CSRFToken header missing")
    kept = csrf_token_of(request)  # a value we could not have made is refused
    if kept is None or not hmac.compare_digest(sent.encode(), kept.encode()):
        raise ClientError("csrf_failed", "X-CSRFToken does not match the cookie")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token_of(request: Request) -> str | None:
    """The request's csrftoken cookie if it is one we could have made."""
    token = cookies(request).get(CSRF_COOKIE, "")
    ok = len(token) == 43 and all(c.isalnum() or c in "-_" for c in token)
    return token if ok else None


def set_cookie(
    config: Config, name: str, value: str, max_age: int, *, http_only: bool
) -> tuple[str, str]:
    """A Set-Cookie header for the whole site; Secure when served over TLS."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Lax"]
    if http_only:
        parts.append("HttpOnly")
    if config.secure_cookies:
        parts.append("Secure")
    return "Set-Cookie", "; ".join(parts)


def origin_allowed(config: Config, headers: dict[str, str]) -> bool:
    """Whether a WebSocket upgrade's Origin may open a socket.

    No Origin (a program, not a page) and our own origin (the Host the
    request was sent to, or our public URL) always may; others only if
    ``--allowed-origins`` lists them, or lists ``*``.
    """
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    allowed = {o.rstrip("/").lower() for o in config.allowed_origins}
    if "*" in allowed or origin in allowed:
        return True
    netloc = urlsplit(origin).netloc
    own = {headers.get("host", "").lower(), urlsplit(config.base_url).netloc.lower()}
    return bool(netloc) and netloc in own
