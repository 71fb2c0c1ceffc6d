"""The browser client's files: served from the table built at start, nothing else.

``StaticFiles`` is tested on a folder of its own with plain requests; the
real server is then asked for every shipped file over a real socket.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.errors import ClientError
from server.net.http import Request
from server.net.static import StaticFiles
from tests.conftest import ServerProcess
from tests.helpers import raw_exchange

WEB = Path(__file__).resolve().parents[2] / "server" / "web"


def make_request(path: str, **headers: str) -> Request:
    return Request("GET", path, "", headers, b"", True, "test", "test")


@pytest.fixture
def site(tmp_path: Path) -> StaticFiles:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "app.js").write_text("export {};")
    (tmp_path / "vendor" / "LICENSE").write_text("ISC")
    (tmp_path / "notes.bak").write_text("not a type we serve")
    (tmp_path / ".hidden.js").write_text("dotfiles are skipped")
    return StaticFiles(tmp_path)


def test_the_table_holds_only_servable_files(site: StaticFiles) -> None:
    assert sorted(site.files) == ["/", "/static/app.js", "/static/vendor/LICENSE"]
    assert site.folders() == {"/static", "/static/vendor"}


def test_a_file_has_its_type_cache_and_security_headers(site: StaticFiles) -> None:
    response = site.answer(make_request("/static/app.js"))
    assert response.status == 200
    assert response.body == b"export {};"
    assert response.content_type == "text/javascript; charset=utf-8"
    assert response.cache_control == "no-cache"
    headers = dict(response.headers)
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["ETag"].startswith('"')


def test_a_current_copy_is_answered_304_without_a_body(site: StaticFiles) -> None:
    etag = dict(site.answer(make_request("/")).headers)["ETag"]
    response = site.answer(make_request("/", **{"if-none-match": etag}))
    assert (response.status, response.head_only) == (304, True)
    stale = site.answer(make_request("/", **{"if-none-match": '"old"'}))
    assert stale.status == 200
    # A list, a weak tag and "*" match too (RFC 9110, 13.1.2).
    for header in (f'"old", {etag}', f"W/{etag}", "*"):
        assert site.answer(make_request("/", **{"if-none-match": header})).status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/notes.bak",
        "/static/.hidden.js",
        "/static/../index.html",
        "/static/vendor/../app.js",
        "/static/%2e%2e/pyproject.toml",
        "/static//etc/passwd",
        "/index.html",
    ],
)
def test_anything_outside_the_table_is_not_found(site: StaticFiles, path: str) -> None:
    with pytest.raises(ClientError) as caught:
        site.answer(make_request(path))
    assert caught.value.code == "not_found"


def fetch(
    server: ServerProcess, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and raw body of one request."""
    raw, _ = raw_exchange(
        server.base_url,
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def shipped() -> list[str]:
    return sorted(
        "/" if p.name == "index.html" else "/static/" + p.relative_to(WEB).as_posix()
        for p in WEB.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def test_every_shipped_file_is_served(server: ServerProcess) -> None:
    assert "/static/vendor/msgpack.min.js" in shipped()
    for path in shipped():
        status, headers, body = fetch(server, path)
        assert status == 200, path
        assert body == (WEB / ("index.html" if path == "/" else path[8:])).read_bytes()
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-cache"
        assert "default-src 'none'" in headers["content-security-policy"]


def test_the_page_is_html_and_traversal_is_refused(server: ServerProcess) -> None:
    status, headers, body = fetch(server, "/", "HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-type"] == "text/html; charset=utf-8"
    for path in [
        "/static/../pyproject.toml",
        "/static/%2e%2e/server/app.py",
        "/static",
        "/static/vendor",
    ]:
        assert fetch(server, path)[0] == 404, path
