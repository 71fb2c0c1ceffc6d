"""Twenty games ending within the same second while lobby requests go on.

Every game is a local one to a single point whose two paddles keep out of the
ball's way, so each ends on its first serve: all of them about two seconds
after they start together, each writing its round and its result at once.
The paddles dodge by predicting where the ball will cross their face (a
straight line folded at the walls), which never fails, unlike the bench bot's
skill-0 play, which now and then meets a ball that bounced toward it.
Beside them, threads create and join lobbies over HTTP the whole time. Every
result must be stored whole and every request answered; a database that
refused a write ("database is locked") or any 5xx fails the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from bench.bot import Api, Bot, Snapshot
from server import protocol
from tests.conftest import ServerProcess
from tests.reliability.support import (
    CHURN_FLAGS,
    LobbyChurn,
    assert_database_sound,
    rows,
)

GAMES = 20
MARGIN = 20.0  # field units between the ball's edge and a dodging paddle's end


def crossing_y(snap: Snapshot, rules: Mapping[str, float], face_x: float) -> float:
    """Where the ball's centre will be when its edge reaches ``face_x``."""
    half = rules["ball_size"] / 2
    ticks = (abs(face_x - snap.ball_x) - half) / abs(snap.ball_vx)
    low, span = half, rules["field_height"] - 2 * half
    # Unfold the bounces: the path mirrored at each wall is a straight line.
    y = (snap.ball_y + snap.ball_vy * ticks - low) % (2 * span)
    return low + (2 * span - y if y > span else y)


class Dodger:
    """A listener that steers both paddles of a local game clear of the ball."""

    def __init__(self) -> None:
        # Sends run as tasks (a listener cannot await); held here until done,
        # since the loop itself keeps only a weak reference to a task.
        self.sending: set[asyncio.Task[int]] = set()

    def __call__(self, bot: Bot, kind: int, message: list[Any]) -> None:
        if kind != protocol.SNAPSHOT or bot.game is None or bot.round is None:
            return
        snap = Snapshot(*message[1:])
        if snap.ball_vx == 0:
            return  # not served yet
        rules = bot.game["rules"]
        side = 0 if snap.ball_vx < 0 else 1
        inner = rules["paddle_inset"] + rules["paddle_width"]
        face_x = inner if side == 0 else rules["field_width"] - inner
        ball_y = crossing_y(snap, rules, face_x)
        clear = (rules["paddle_height"] + rules["ball_size"]) / 2 + MARGIN
        half = rules["paddle_height"] / 2
        spots = [
            y
            for y in (ball_y - clear, ball_y + clear)
            if half <= y <= rules["field_height"] - half
        ]
        paddle_y = snap.left_y if side == 0 else snap.right_y
        target = min(spots, key=lambda y: abs(y - paddle_y))
        step = rules["paddle_speed"] / rules["tick_rate"]
        move = max(-1.0, min(1.0, (target - paddle_y) / step))
        seat = bot.round["left"] if side == 0 else bot.round["right"]
        task = asyncio.get_running_loop().create_task(bot.send_input(seat, move))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)


async def local_game(api: Api) -> dict[str, Any]:
    """Start a local game to one point, play it with a Dodger; its GAME_END."""
    body = {"player-1": "left", "player-2": "right", "points_to_win": 1}
    started = await api.post("/api/start_game/", body)
    bot = Bot("local", started["token"], started["ws_url"], autoplay=False)
    bot.listener = Dodger()
    try:
        await bot.connect()
        return await bot.finished(30)
    finally:
        await bot.close()


async def test_twenty_games_end_together_while_lobbies_churn(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory(tls=False, extra=CHURN_FLAGS)
    api = Api(server.base_url)
    with LobbyChurn(server.base_url) as churn:
        ends = await asyncio.gather(*(local_game(api) for _ in range(GAMES)))
    assert server.stop() == 0

    for end in ends:
        assert end["status"] == "finished" and end["saved"] is True
        assert end["winner"] in (0, 1)
        # The one point came on the first serve: nobody touched the ball.
        (only,) = end["rounds"]
        assert sorted(only["score"]) == [0, 1]
    ids = [end["game_id"] for end in ends]
    assert len(set(ids)) == GAMES

    marks = ",".join("?" * GAMES)
    games = rows(server.db_path, f"SELECT * FROM games WHERE id IN ({marks})", *ids)
    assert {g["status"] for g in games} == {"finished"} and len(games) == GAMES
    ended = [g["ended_at"] for g in games]
    assert max(ended) - min(ended) < 1.0, "the games did not end together"
    rounds = rows(
        server.db_path, f"SELECT * FROM rounds WHERE game_id IN ({marks})", *ids
    )
    by_game = {r["game_id"]: r for r in rounds}
    assert len(rounds) == len(by_game) == GAMES  # exactly one round each
    for game in games:
        played = by_game[game["id"]]
        assert played["status"] == "finished"
        assert played["winner_seat"] == game["winner_seat"] is not None
        assert sorted([played["left_score"], played["right_score"]]) == [0, 1]
    assert_database_sound(server.db_path)

    # The lobby requests all succeeded, through the whole burst.
    assert churn.failures == []
    assert set(churn.statuses) == {200, 201} and len(churn.statuses) > 40
    assert not any("database is locked" in line for line in server.log)
    assert server.errors() == []
