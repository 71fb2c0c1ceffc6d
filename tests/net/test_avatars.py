"""Avatars: uploads are checked and re-encoded; everyone has one to show."""

from __future__ import annotations

import http.client
import io
import json
from typing import Any

import pytest
from PIL import Image

from tests.conftest import ServerProcess
from tests.helpers import db_counts, insecure_context, login, request


def picture(kind: str, size: tuple[int, int], colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, kind)
    return out.getvalue()


def upload(
    server: ServerProcess, token: str, body: bytes, content_type: str
) -> tuple[int, Any]:
    status, answer, _ = request(
        server.base_url,
        "PUT",
        "/api/me/avatar/",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    return status, answer


def download(server: ServerProcess, player_id: str) -> tuple[int, bytes, Any]:
    host, port = server.base_url.split("://", 1)[1].split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=insecure_context())
    try:
        conn.request("GET", f"/api/players/{player_id}/avatar/")
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def me(server: ServerProcess, token: str) -> Any:
    _, answer, _ = request(
        server.base_url, "GET", "/api/me/", headers={"Authorization": f"Bearer {token}"}
    )
    return answer


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_an_upload_is_served_re_encoded(server: ServerProcess, kind: str) -> None:
    token = login(server.base_url, f"wendy{kind.lower()}")
    sent = picture(kind, (600, 300))
    status, answer = upload(server, token, sent, f"image/{kind.lower()}")
    assert status == 200, answer
    player_id = me(server, token)["player_id"]
    assert answer["avatar_url"] == f"/api/players/{player_id}/avatar/"

    status, body, headers = download(server, player_id)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body != sent
    with Image.open(io.BytesIO(body)) as served:
        assert served.format == "PNG"
        assert served.size == (256, 128)  # scaled to fit, shape kept
    assert me(server, token)["has_avatar"] is True


def test_players_without_one_get_a_stable_default(server: ServerProcess) -> None:
    token = login(server.base_url, "xena")
    player_id = me(server, token)["player_id"]
    first = download(server, player_id)
    assert first[0] == 200 and first[2]["Content-Type"] == "image/png"
    assert download(server, player_id)[1] == first[1]
    with Image.open(io.BytesIO(first[1])) as shown:
        assert shown.format == "PNG"
    assert download(server, "NOSUCHPLAYER0000")[0] == 404


def bomb() -> bytes:
    """A small PNG that claims 20000 x 20000 pixels once decoded."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"GIF89a not a png", "image/png", 400, "invalid_image"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            "image/png",
            400,
            "invalid_image",
        ),
        ("jpeg-as-png", "image/png", 400, "invalid_image"),
        ("truncated", "image/png", 400, "invalid_image"),
        ("too-wide", "image/png", 413, "image_too_large"),
        ("bomb", "image/png", 413, "image_too_large"),
        ("oversized", "image/png", 413, "body_too_large"),
        ("png", "image/gif", 415, "unsupported_media_type"),
        ("png", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_unfit_uploads_are_refused_and_change_nothing(
    server: ServerProcess, body: Any, content_type: str, status: int, code: str
) -> None:
    made = {
        "jpeg-as-png": lambda: picture("JPEG", (10, 10)),
        "truncated": lambda: picture("PNG", (64, 64))[:60],
        "too-wide": lambda: picture("PNG", (1025, 10)),
        "bomb": bomb,
        "oversized": lambda: b"\x89PNG" + b"\0" * (512 * 1024),
        "png": lambda: picture("PNG", (10, 10)),
    }
    data = made[body]() if isinstance(body, str) else body
    token = login(server.base_url, "yara")
    before = db_counts(server.db_path)
    answer = upload(server, token, data, content_type)
    assert (answer[0], answer[1]["error"]["code"]) == (status, code)
    assert db_counts(server.db_path) == before


def test_uploading_needs_a_login(server: ServerProcess) -> None:
    status, answer, _ = request(
        server.base_url,
        "PUT",
        "/api/me/avatar/",
        picture("PNG", (10, 10)),
        {"Content-Type": "image/png"},
    )
    assert (status, answer["error"]["code"]) == (401, "login_required")
    assert json.dumps(answer)
