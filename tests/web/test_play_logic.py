"""The client's prediction and interpolation (server/web/play.js), in Chromium.

The module is imported into a page served by the real server and fed made-up
messages, so each rule is checked with exact numbers: the default rules move
a paddle 8 units a tick at 60 ticks a second.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ServerProcess

# A Match of the default rules, its sent messages kept in `sent`; `snap`
# makes a SNAPSHOT array arriving at the local time its tick maps to.
SETUP = """
const { Match } = await import("/static/play.js");
const rules = { field_width: 800, field_height: 600, paddle_width: 12,
  paddle_height: 100, paddle_inset: 30, paddle_speed: 480, ball_size: 12,
  ball_speed: 360, ball_speed_up: 1.07, ball_max_speed: 1800,
  max_bounce_angle: 60, points_to_win: 5, tick_rate: 60, serve_delay: 1,
  round_break: 2 };
const tickMs = 1000 / 60;
const sent = [];
const make = (you, mode = "remote") => new Match({ game_id: "G", mode, seed: 1,
  rules, players: [{ seat: 0, name: "a" }, { seat: 1, name: "b" },
  { seat: 2, name: "c" }], rounds: [[0, 1]], you }, (m) => sent.push(m));
const snap = (tick, { ball = [400, 300], v = [6, 0], paddles = [300, 300],
  score = [0, 0], acks = [0, 0], serveWait = 0 } = {}) =>
  [68, tick, 0, ...ball, ...v, ...paddles, ...score, ...acks, serveWait];
const roundStart = [67, { round: 0, left: 0, right: 1, left_name: "a",
  right_name: "b" }];
"""


def run(page: Any, body: str) -> Any:
    return page.evaluate(f"async () => {{ {SETUP} {body} }}")


@pytest.fixture
def page(open_page: Any, server: ServerProcess) -> Any:
    return open_page("logic")


def test_own_paddle_is_predicted_and_reconciled_with_the_ack(page: Any) -> None:
    result = run(
        page,
        """
        const m = make([0]);
        m.handle(67, roundStart, 0);
        m.handle(68, snap(100), 100 * tickMs);
        for (let i = 0; i < 3; i++) m.input(0, -1);   // three ticks up
        const predicted = m.sides[0].y;
        // The server has applied input 1 only: 8 units up from 300.
        m.handle(68, snap(101, { paddles: [292, 300], acks: [1, 0] }), 101 * tickMs);
        const replayed = m.sides[0].y;
        const pending = m.sides[0].pending.map((p) => p.seq);
        // It put the paddle 2 units lower than we had: a correction, faded.
        m.handle(68, snap(102, { paddles: [286, 300], acks: [2, 0] }), 102 * tickMs);
        const corrected = m.sides[0].y;
        const shownAtOnce = m.view(102 * tickMs).paddles[0];
        const shownLater = m.view(102 * tickMs + 1000).paddles[0];
        m.input(0, 0);
        m.input(0, 0);   // still released: nothing more to say
        return { predicted, replayed, pending, corrected, shownAtOnce, shownLater,
                 sent };
        """,
    )
    assert result["predicted"] == 300 - 3 * 8
    assert result["replayed"] == 292 - 2 * 8
    assert result["pending"] == [2, 3]
    assert result["corrected"] == 286 - 8
    assert result["shownAtOnce"] == pytest.approx(276)  # no jump on screen
    assert result["shownLater"] == pytest.approx(278)  # the correction faded
    assert result["sent"] == [[4, 1, -1], [4, 2, -1], [4, 3, -1], [4, 4, 0]]


def test_a_local_game_names_the_seat_and_spectators_send_nothing(page: Any) -> None:
    result = run(
        page,
        """
        const local = make([0, 1, 2], "local");
        local.handle(67, roundStart, 0);
        local.handle(68, snap(5), 5 * tickMs);
        local.input(0, 1);
        local.input(1, -1);
        const localSent = sent.splice(0);
        const watcher = make([2]);
        watcher.handle(67, roundStart, 0);
        watcher.handle(68, snap(5), 5 * tickMs);
        watcher.advance(0, () => 1);
        watcher.advance(1000, () => 1);
        return { localSent, watcherSent: sent, sides: watcher.ownSides(),
                 spectating: watcher.spectating() };
        """,
    )
    assert result["localSent"] == [[4, 1, 1, 0], [4, 1, -1, 1]]
    assert result["watcherSent"] == []
    assert result["sides"] == []
    assert result["spectating"] is True


def test_the_ball_is_interpolated_between_sparse_snapshots(page: Any) -> None:
    # One snapshot every third tick, as a slow link or a low rate would give.
    result = run(
        page,
        """
        const m = make([2]);
        m.handle(67, roundStart, 0);
        m.handle(68, snap(30, { ball: [100, 200], paddles: [250, 300] }), 30 * tickMs);
        m.handle(68, snap(33, { ball: [118, 209], paddles: [250, 330] }), 33 * tickMs);
        const delay = 2 + 30 / tickMs;   // render delay, in ticks
        const at = (tick) => m.view((tick + delay) * tickMs);
        const serve = make([2]);
        serve.handle(67, roundStart, 0);
        serve.handle(68, snap(30, { ball: [790, 300] }), 30 * tickMs);
        serve.handle(68, snap(33, { ball: [400, 300], v: [0, 0], score: [1, 0],
                                    serveWait: 60 }), 33 * tickMs);
        return { start: at(30), third: at(31), twoThirds: at(32), end: at(33),
                 ahead: at(34), serve: serve.view((31.5 + delay) * tickMs) };
        """,
    )
    assert result["start"]["ball"] == [100, 200]
    assert result["third"]["ball"] == pytest.approx([106, 203])
    assert result["twoThirds"]["ball"] == pytest.approx([112, 206])
    assert result["twoThirds"]["paddles"] == pytest.approx([250, 320])
    assert result["end"]["ball"] == pytest.approx([118, 209])
    # Past the newest snapshot the ball goes on along its velocity (6, 0).
    assert result["ahead"]["ball"] == pytest.approx([124, 209])
    # A point puts the ball back at the centre: drawn there, not slid there.
    assert result["serve"]["ball"] == [400, 300]
    assert result["serve"]["score"] == [1, 0]
