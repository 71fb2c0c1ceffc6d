"""The browser client's files, served from memory at ``/`` and ``/static/``.

Theory of operation. ``StaticFiles`` reads every file under ``server/web``
once, when the server starts, into a table keyed by URL path: ``/`` for
``index.html``, ``/static/<path>`` for the rest. A request is answered by
looking its path up in that table and nothing else, so no part of a request
ever reaches the file system: there is no path to traverse, and a file added
to the folder after the start is not served. Only the types in
``CONTENT_TYPES`` are loaded; anything else in the folder is ignored.

Every file carries an ETag (a hash of its bytes) and ``Cache-Control:
no-cache``: the browser keeps its copy but asks each time, and a matching
``If-None-Match`` is answered 304 without a body. The URLs carry no version,
so a longer lifetime would keep an old client after an upgrade of the server.
The page's own headers allow scripts, styles, images and connections from its
own origin only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from ..errors import ClientError
from .http import Request, Response

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}
MAX_FILES = 64  # the client is a handful of files; more means a wrong folder
# 'self' also covers ws: and wss: to the page's own host and port (CSP 3).
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self'; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class StaticFiles:
    """URL path -> file, for every servable file under ``root``."""

    def __init__(self, root: Traversable | None = None) -> None:
        root = root or resources.files("server").joinpath("web")
        self.files: dict[str, StaticFile] = {}
        if not root.is_dir():
            logger.warning("no browser client: %s is missing", root)
            return
        for rel, entry in _walk(root, ""):
            content_type = _content_type(rel)
            if content_type is None:
                continue
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            path = "/" if rel == "index.html" else "/static/" + rel
            self.files[path] = StaticFile(body, content_type, etag)
            if len(self.files) > MAX_FILES:
                raise ValueError(f"more than {MAX_FILES} files under {root}")

    def folders(self) -> set[str]:
        """The URL folders that hold files, for the router's prefix table."""
        return {p.rpartition("/")[0] for p in self.files if p != "/"}

    def answer(self, request: Request) -> Response:
        """The file at the request's path, 304 if the client's copy is current."""
        found = self.files.get(request.path.rstrip("/") or "/")
        if found is None:
            raise ClientError("not_found")
        headers = [("ETag", found.etag), *SECURITY_HEADERS]
        fresh = _matches(request.headers.get("if-none-match"), found.etag)
        # A 304 has no body, but its Content-Length still states the full one.
        return Response(
            304 if fresh else 200,
            found.body,
            found.content_type,
            headers,
            head_only=fresh,
            cache_control="no-cache",
        )


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names ``etag``: a list, weak comparison, or "*"."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(",")
    )


def _walk(folder: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found += _walk(entry, f"{prefix}{entry.name}/")
        else:
            found.append((prefix + entry.name, entry))
    return found


def _content_type(rel: str) -> str | None:
    name = rel.rpartition("/")[2]
    if name in CONTENT_TYPES:
        return CONTENT_TYPES[name]
    return CONTENT_TYPES.get("." + name.rpartition(".")[2]) if "." in name else None
