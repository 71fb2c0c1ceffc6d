"""The whole server, as users meet it: curl, then bots playing games to the end.

Each game's result is checked three ways that must agree: what the bots were
told in GAME_END, what GET /api/game/<id>/ answers, and the rows in the
SQLite file, read directly.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from typing import Any

import pytest

from bench.bot import Api, Bot, GameRun, run_lobby_game, run_local_game
from tests.conftest import ROOT, ServerProcess
from tests.helpers import LOBBY_ID, aget, connect_db, get

POINTS = 2  # to win a round: keeps every game to seconds


def curl(command: str) -> dict[str, Any]:
    """Run a curl command line as typed in a shell; the JSON it printed."""
    done = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=15, check=True
    )
    return json.loads(done.stdout)


def test_the_three_curl_commands(server: ServerProcess) -> None:
    base = server.base_url
    created = curl(
        """curl -k -d '{"host": "test"}' -H "Content-Type: application/json" """
        f"{base}/api/create_lobby/"
    )
    lobby_id = created["lobby_id"]
    assert re.fullmatch(LOBBY_ID, lobby_id)
    assert created["host"] is True
    assert created["name"] == "test"
    assert created["token"]
    assert created["ws_url"] == server.ws_url

    joined = curl(
        f"""curl -k -d '{{"lobby_id": "{lobby_id}", "guest_name": "myname"}}' """
        f"""-H "Content-Type: application/json" {base}/api/join_lobby/"""
    )
    assert joined["message"] == f"Joined lobby {lobby_id} as myname."
    assert joined["name"] == "myname"
    assert joined["renamed"] is False
    assert joined["seat"] == 1
    assert joined["token"] not in ("", created["token"])

    started = curl(
        """curl -k -d '{"player-1": "me", "player-2": "you"}' """
        f"""-H "Content-Type: application/json" {base}/api/start_game/"""
    )
    assert started["game_mode"] == "local"
    assert started["players"] == ["me", "you"]
    assert started["rounds"] == [
        {"round": 0, "players": ["me", "you"], "seats": [0, 1]}
    ]
    status, game = get(base, f"/api/game/{started['game_id']}/")
    assert status == 200
    assert game["status"] == "waiting"  # until its socket connects

    status, lobby = get(base, f"/api/lobby/{lobby_id}/")
    assert status == 200
    assert [p["name"] for p in lobby["players"]] == ["test", "myname"]


# Stored results ----------------------------------------------------------------


async def check_stored(server: ServerProcess, run: GameRun, players: int) -> None:
    """GAME_END, the API's game view and the database all tell the same result.

    Also that the server logged no error of its own while the game ended and
    its sockets closed.
    """
    end = run.result
    bot_game = run.bots[0].game
    assert bot_game is not None
    points = bot_game["rules"]["points_to_win"]
    rounds = players * (players - 1) // 2
    assert end["status"] == "finished"
    assert end["saved"] is True
    assert end["game_id"] == run.game_id
    assert len(end["rounds"]) == rounds
    for r in end["rounds"]:
        assert max(r["score"]) == points
        assert r["winner"] == (r["left"] if r["score"][0] == points else r["right"])
    assert end["standings"][0]["seat"] == end["winner"]
    assert end["winner_name"] == end["standings"][0]["name"]
    for bot in run.bots:
        assert bot.result == end  # every socket heard the same ending
        assert bot.close_code == 4006
        # An input that crosses the tick ending a round is refused as
        # not_in_game; that race is allowed, any other error is not.
        assert [e for e in bot.errors if e["code"] != "not_in_game"] == []

    status, view = await aget(server.base_url, f"/api/game/{run.game_id}/")
    assert status == 200
    assert view["status"] == "finished"
    assert view["winner"] == end["winner_name"]
    assert view["winner_seat"] == end["winner"]
    assert view["ended_at"] is not None
    assert [r["score"] for r in view["rounds"]] == [r["score"] for r in end["rounds"]]
    assert {r["status"] for r in view["rounds"]} == {"finished"}
    assert view["standings"] == end["standings"]

    with connect_db(server.db_path) as db:
        game = db.execute("SELECT * FROM games WHERE id = ?", (run.game_id,)).fetchone()
        stored = db.execute(
            "SELECT * FROM rounds WHERE game_id = ? ORDER BY idx", (run.game_id,)
        ).fetchall()
        names = db.execute(
            "SELECT name FROM game_players WHERE game_id = ? ORDER BY seat",
            (run.game_id,),
        ).fetchall()
    assert game["status"] == "finished"
    assert game["winner_seat"] == end["winner"]
    assert game["ended_at"] is not None
    assert game["lobby_id"] == run.lobby_id
    assert [n["name"] for n in names] == [
        p["name"] for p in run.bots[0].game["players"]
    ]
    assert len(stored) == rounds
    for row, told in zip(stored, end["rounds"], strict=True):
        assert row["status"] == "finished"
        assert [row["left_score"], row["right_score"]] == told["score"]
        assert max(row["left_score"], row["right_score"]) == points
        assert row["winner_seat"] == told["winner"]

    # The sockets' close reaches the server just after the bots see it.
    await asyncio.sleep(0.2)
    assert server.errors() == []


def api_for(server: ServerProcess) -> Api:
    return Api(server.base_url, insecure=True)


@pytest.mark.parametrize("over_http", [True, False], ids=["http_start", "ws_start"])
async def test_two_bots_play_a_lobby_game(
    server: ServerProcess, over_http: bool
) -> None:
    # One bot meets every ball, the other none: two points, a few seconds.
    run = await run_lobby_game(
        api_for(server),
        2,
        POINTS,
        start_over_http=over_http,
        skill=(1.0, 0.0),
        seed=7,
    )
    await check_stored(server, run, 2)
    if over_http:
        assert run.start is not None
        assert run.start["game_id"] == run.game_id
        assert run.start["game_mode"] == "remote"
        assert run.start["players"] == ["bot-1", "bot-2"]
    assert run.result["winner_name"] == "bot-1"
    host = run.bots[0]
    # The host's inputs came back acknowledged, in order, with a round trip.
    assert host.acked == sorted(host.acked)
    assert len(host.rtts) > 10
    assert all(0 < t < 1 for t in host.rtts)


async def test_three_bots_play_every_pairing_and_the_third_watches(
    server: ServerProcess,
) -> None:
    # One point a round: three rounds and two breaks already take seconds.
    run = await run_lobby_game(api_for(server), 3, 1, skill=(1.0, 0.0, 0.0), seed=3)
    await check_stored(server, run, 3)

    pairings = [(r["left"], r["right"]) for r in run.result["rounds"]]
    assert sorted(tuple(sorted(p)) for p in pairings) == [(0, 1), (0, 2), (1, 2)]
    for seat, bot in enumerate(run.bots):
        assert bot.seats == [seat]
        for index, pair in enumerate(pairings):
            # Every member sees every round; only its two players send input.
            assert bot.snapshots_by_round[index] > 30
            if seat in pair:
                assert bot.inputs_by_round[index] > 0
            else:
                assert bot.inputs_by_round[index] == 0
    assert run.result["winner_name"] == "bot-1"  # the one that meets every ball


async def test_local_game_one_socket_drives_both_seats(server: ServerProcess) -> None:
    run = await run_local_game(
        api_for(server), ("me", "you"), POINTS, skill={0: 1.0, 1: 0.0}, seed=5
    )
    (bot,) = run.bots
    assert bot.game is not None
    assert bot.game["mode"] == "local"
    assert bot.seats == [0, 1]
    assert bot.inputs_by_round[0] > 0
    # Each seat's inputs were acknowledged separately by the snapshots.
    assert len(bot.rtts) > 10
    await check_stored(server, run, 2)
    assert run.result["winner_name"] == "me"


async def test_plain_http_server_plays_over_ws(plain_server: ServerProcess) -> None:
    assert plain_server.base_url.startswith("http://")
    run = await run_lobby_game(
        Api(plain_server.base_url), 2, 1, skill=(0.0, 1.0), seed=11
    )
    assert run.bots[0].ws_url.startswith("ws://")
    await check_stored(plain_server, run, 2)
    assert run.result["winner_name"] == "bot-2"


async def test_reconnected_bot_is_told_the_running_game(server: ServerProcess) -> None:
    # A player whose socket drops mid-game gets GAME_START again on hello.
    api = api_for(server)
    created = await api.post(
        "/api/create_lobby/", {"host": "a", "points_to_win": 99, "max_players": 2}
    )
    joined = await api.post(
        "/api/join_lobby/", {"lobby_id": created["lobby_id"], "guest_name": "b"}
    )
    bots = [
        Bot(s["name"], s["token"], s["ws_url"], ssl_context=api.ssl, autoplay=False)
        for s in (created, joined)
    ]
    try:
        for bot in bots:
            await bot.connect()
        await bots[1].ready()
        await bots[0].start()
        await bots[1].wait_until(lambda: bots[1].snapshot is not None, 5)
        await bots[1].close()

        again = Bot("b", joined["token"], joined["ws_url"], ssl_context=api.ssl)
        await again.connect()
        await again.wait_until(lambda: again.snapshot is not None, 5)
        assert again.game is not None
        assert again.game["you"] == [1]
        await again.close()
    finally:
        await asyncio.gather(*(b.close() for b in bots))


# The bot's command line ------------------------------------------------------------


def bot_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.bot", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bot_command_plays_a_game_and_prints_it(server: ServerProcess) -> None:
    # Skill 0: every ball gets through, so two points take seconds.
    done = bot_command(
        "--url", server.base_url, "--insecure", "--points", "2", "--skill", "0",
        "--start-over-socket",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "round 1: bot-1 vs bot-2"
    points = [line for line in lines if line.startswith("  point to ")]
    assert len(points) in (2, 3)
    final = re.fullmatch(r"  point to bot-[12]: bot-1 (\d) - (\d) bot-2", points[-1])
    assert final is not None
    assert max(int(final.group(1)), int(final.group(2))) == 2
    winner = next(line for line in lines if line.startswith("winner: "))
    assert re.fullmatch(r"winner: bot-[12] \(seat [01]\)", winner)
    assert "saved: yes" in lines
    game_id = re.search(r"^game (\w+) finished$", done.stdout, re.M)
    assert game_id is not None
    status, view = get(server.base_url, f"/api/game/{game_id.group(1)}/")
    assert status == 200
    assert view["status"] == "finished"
    assert f"winner: {view['winner']} (seat {view['winner_seat']})" == winner


def test_bot_command_explains_a_failure(server: ServerProcess) -> None:
    untrusted = bot_command("--url", server.base_url, "--timeout", "10")
    assert untrusted.returncode == 1
    assert "try --insecure" in untrusted.stderr

    slow = bot_command("--url", server.base_url, "--insecure", "--timeout", "0.5")
    assert slow.returncode == 1
    assert "no result within 0.5 s" in slow.stderr
