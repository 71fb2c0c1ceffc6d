"""The server behind nginx, run from the shipped ``deploy/nginx.conf``.

The test copy is the shipped file with only its machine-specific lines
swapped: ports for free loopback ones, certificate paths for a self-signed
pair made here, pid, log and temporary paths for a tmp folder, and ``user``
for one that needs no privilege drop. Each swap must match exactly once, so
a change to the shipped file that the test no longer covers fails loudly.
The routes are left as they are, and are what is tested: the API, the
restricted metrics, the redirect from plain HTTP, the JSON 404 for anything
else, a whole remote game over wss:// through the proxy, and that the server
(run with ``--trusted-proxy 127.0.0.1`` as deploy/README.md says) counts two
clients of nginx apart.

nginx comes from Debian (.ci/run installs it). Without it the test is
skipped on a workstation, and fails under CI=true, where it must run.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.bot import Api, run_lobby_game
from server.net.tls import ensure_self_signed
from tests.conftest import ROOT, ServerProcess
from tests.helpers import TIMEOUT, get, insecure_context
from tests.reliability.support import rows

SHIPPED = ROOT / "deploy" / "nginx.conf"


def find_nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed; .ci/run installs Debian's nginx")
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def swap(text: str, pattern: str, replacement: str) -> str:
    """Replace the one whole line matching ``pattern``; fail if not exactly one."""
    regex = re.compile(rf"^([ \t]*){pattern}[ \t]*$", re.MULTILINE)
    found = len(regex.findall(text))
    assert found == 1, f"deploy/nginx.conf: {found} lines match {pattern!r}"
    return regex.sub(lambda m: m.group(1) + replacement, text)


def local_copy(folder: Path, upstream: int, https: int, http: int) -> str:
    """The shipped config with its machine-specific lines pointed at ``folder``."""
    # The server's own maker of development certificates, for 127.0.0.1.
    cert, key = ensure_self_signed(folder / "tls", "localhost")
    text = SHIPPED.read_text()
    # Run as root, nginx would switch its workers to www-data, who may not
    # read the tmp folder; as anyone else it cannot switch at all.
    user = "user root;" if os.geteuid() == 0 else "# user: as invoked"
    text = swap(text, r"user www-data;", user)
    text = swap(text, r"pid /run/nginx\.pid;", f"pid {folder}/nginx.pid;")
    text = swap(
        text,
        r"error_log /var/log/nginx/error\.log warn;",
        f"error_log {folder}/error.log info;",
    )
    text = swap(
        text,
        r"access_log /var/log/nginx/pong\.access\.log;",
        f"access_log {folder}/access.log;\n" + temp_paths(folder),
    )
    text = swap(text, r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{upstream};")
    text = swap(text, r"listen 80;", f"listen 127.0.0.1:{http};")
    text = swap(text, r"listen \[::\]:80;", "# no IPv6 in the test")
    text = swap(text, r"listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    text = swap(text, r"listen \[::\]:443 ssl;", "# no IPv6 in the test")
    text = swap(
        text,
        r"ssl_certificate /etc/letsencrypt/live/pong\.example\.com/fullchain\.pem;",
        f"ssl_certificate {cert};",
    )
    text = swap(
        text,
        r"ssl_certificate_key /etc/letsencrypt/live/pong\.example\.com/privkey\.pem;",
        f"ssl_certificate_key {key};",
    )
    return text


def temp_paths(folder: Path) -> str:
    """Where nginx buffers bodies; its defaults are under /var/lib/nginx."""
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    return "\n".join(f"    {k}_temp_path {folder}/{k};" for k in kinds)


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {port}:\n{log.read_text()}")


@contextlib.contextmanager
def nginx_in_front(
    nginx: str, folder: Path, upstream: int, https: int, http: int
) -> Iterator[None]:
    """nginx, from a local copy of the shipped config, until the block ends.

    Its logs stay in ``folder``; it must stop cleanly and log nothing worse
    than an error.
    """
    folder.mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(local_copy(folder, upstream, https, http))
    log = folder / "error.log"
    base = [nginx, "-e", str(log), "-p", str(folder), "-c", str(conf)]
    checked = subprocess.run(
        [*base, "-t"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*base, "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(https, process, log)
        yield
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish, then exit
        try:
            code = process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, log.read_text()
    serious = re.findall(r"\[(?:emerg|alert|crit)\].*", log.read_text())
    assert serious == [], serious


def fetch(
    port: int,
    path: str,
    source: str = "127.0.0.1",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """GET (POST with a ``body``) over TLS to nginx from ``source``; status,
    headers, body."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1",
        port,
        timeout=TIMEOUT,
        context=insecure_context(),
        source_address=(source, 0),
    )
    try:
        conn.request("GET" if body is None else "POST", path, body, headers or {})
        response = conn.getresponse()
        answer = {k.lower(): v for k, v in response.getheaders()}
        return response.status, answer, response.read()
    finally:
        conn.close()


def failed_login(port: int, source: str, forged: str | None = None) -> int:
    """A wrong password through nginx from ``source``; the status."""
    body = json.dumps({"username": "nobody", "password": "a wrong guess"})
    headers = {"Content-Type": "application/json"}
    if forged is not None:
        headers["X-Forwarded-For"] = forged  # nginx appends the real one
    return fetch(port, "/api/login/", source, body.encode(), headers)[0]


async def test_a_game_through_nginx(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    nginx = find_nginx()
    https, plain, upstream = free_port(), free_port(), free_port()
    # The server logs its public URL, not the port it took, so it gets a
    # port of our choosing (the later --port wins over the factory's 0).
    public = ("--public-url", f"https://127.0.0.1:{https}")
    # As deploy/README.md says to run it: nginx's X-Forwarded-For believed.
    proxy = ("--trusted-proxy", "127.0.0.1", "--login-failures-per-address", "1")
    server = server_factory(tls=False, extra=(*public, *proxy, "--port", str(upstream)))
    folder = tmp_path / "nginx"
    with nginx_in_front(nginx, folder, upstream, https, plain):
        await through_nginx(server, https, plain, folder)
    assert server.stop() == 0
    assert server.errors() == []


async def through_nginx(
    server: ServerProcess, https: int, plain: int, folder: Path
) -> None:
    proxy = f"https://127.0.0.1:{https}"

    status, answer = get(proxy, "/api/health/")
    assert status == 200 and answer["status"] == "ok"

    # Metrics only from this machine's own address: 127.0.0.2 is loopback
    # too, but not the address the config allows.
    status, headers, body = fetch(https, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"# TYPE" in body
    assert fetch(https, "/metrics", source="127.0.0.2")[0] == 403

    status, headers, body = fetch(https, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, headers, body = fetch(https, "/static/vendor/LICENSE")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    status, headers, body = fetch(https, "/nothing-here")
    assert status == 404 and headers["content-type"] == "application/json"
    assert b'"not_found"' in body

    conn = http.client.HTTPConnection("127.0.0.1", plain, timeout=TIMEOUT)
    try:
        conn.request("GET", "/api/health/")
        redirect = conn.getresponse()
        assert redirect.status == 301
        assert redirect.getheader("Location", "").startswith("https://")
    finally:
        conn.close()

    # A whole remote game, every request and both sockets through nginx.
    run = await run_lobby_game(Api(proxy, insecure=True), 2, 1, skill=(1.0, 0.0))
    assert all(bot.ws_url == f"wss://127.0.0.1:{https}/ws/" for bot in run.bots)
    assert run.result["status"] == "finished" and run.result["saved"] is True
    assert run.result["winner_name"] == "bot-1"
    status, view = get(proxy, f"/api/game/{run.game_id}/")
    assert status == 200 and view["status"] == "finished"
    (stored,) = rows(server.db_path, "SELECT * FROM games WHERE id = ?", run.game_id)
    assert stored["status"] == "finished" and stored["winner_seat"] == 0
    # Two clients are two addresses to the server, however they dress up.
    assert failed_login(https, "127.0.0.2") == 401
    assert failed_login(https, "127.0.0.2", forged="127.0.0.3") == 429
    assert failed_login(https, "127.0.0.1") == 401

    upgrades = re.findall(
        r'"GET /ws/ HTTP/1\.1" 101 ', (folder / "access.log").read_text()
    )
    assert len(upgrades) == 2  # both bots' sockets went through nginx
