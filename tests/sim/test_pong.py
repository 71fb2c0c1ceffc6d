import math
from dataclasses import astuple

import pytest

from server.sim.pong import (
    NO_EVENTS,
    PaddleHit,
    RoundOver,
    RoundState,
    Scored,
    new_round,
    step,
)
from server.sim.rules import Rules, TickRules

RULES = Rules()
T = RULES.ticked()
REACH = T.paddle_half + T.ball_half
LEFT_CONTACT = T.left_face + T.ball_half  # ball centre x when touching the face
RIGHT_CONTACT = T.right_face - T.ball_half


def in_play(
    t: TickRules = T,
    *,
    x: float,
    y: float,
    vx: float,
    vy: float,
    paddles: tuple[float, float] | None = None,
) -> RoundState:
    """A round with the ball already moving as given."""
    state = new_round(t, seed=1)
    state.serve_wait = 0
    state.ball_x, state.ball_y, state.ball_vx, state.ball_vy = x, y, vx, vy
    if paddles is not None:
        state.paddle_y[:] = paddles
    return state


def speed(state: RoundState) -> float:
    return math.hypot(state.ball_vx, state.ball_vy)


# Paddles ---------------------------------------------------------------------


def test_paddles_move_one_step_per_tick() -> None:
    state = new_round(T, seed=1)
    step(state, T, -1.0, 0.5)
    assert state.paddle_y == [300.0 - T.paddle_step, 300.0 + T.paddle_step / 2]


def test_paddles_are_clamped_inside_the_field() -> None:
    state = new_round(T, seed=1)
    for _ in range(200):
        step(state, T, -1.0, 1.0)
    assert state.paddle_y == [T.paddle_min_y, T.paddle_max_y]
    for _ in range(200):
        step(state, T, 1.0, -1.0)
    assert state.paddle_y == [T.paddle_max_y, T.paddle_min_y]


@pytest.mark.parametrize("move", [1e9, math.inf, -math.inf, -1e300, 2.0, -1.5])
def test_an_extreme_move_moves_at_most_one_step(move: float) -> None:
    state = new_round(T, seed=1)
    step(state, T, move, move)
    for y in state.paddle_y:
        assert abs(y - 300.0) == pytest.approx(T.paddle_step)


def test_nan_move_stands_still() -> None:
    state = new_round(T, seed=1)
    step(state, T, math.nan, math.nan)
    assert state.paddle_y == [300.0, 300.0]


# Serving ---------------------------------------------------------------------


def test_ball_waits_serve_delay_then_serves_within_thirty_degrees() -> None:
    state = new_round(T, seed=5)
    assert (state.ball_x, state.ball_y) == (400.0, 300.0)
    assert state.serve_wait == T.serve_delay_ticks
    for _ in range(T.serve_delay_ticks - 1):
        assert step(state, T, 0.0, 0.0) is NO_EVENTS
        assert (state.ball_vx, state.ball_vy) == (0.0, 0.0)
    step(state, T, 0.0, 0.0)
    assert state.serves == 1
    assert speed(state) == pytest.approx(T.serve_speed)
    angle = math.degrees(math.atan2(abs(state.ball_vy), abs(state.ball_vx)))
    assert angle <= 30.0 + 1e-9
    assert (state.ball_x, state.ball_y) == (400.0, 300.0)
    step(state, T, 0.0, 0.0)
    assert state.ball_x != 400.0


def test_serves_depend_only_on_the_seed() -> None:
    def first_serve(seed: int) -> tuple[float, float]:
        state = new_round(T, seed)
        for _ in range(T.serve_delay_ticks):
            step(state, T, 0.0, 0.0)
        return state.ball_vx, state.ball_vy

    assert first_serve(42) == first_serve(42)
    serves = {first_serve(seed) for seed in range(20)}
    assert len(serves) == 20
    assert {vx < 0 for vx, _ in serves} == {True, False}


def test_no_serve_delay_serves_at_once() -> None:
    t = Rules(serve_delay=0.0).ticked()
    state = new_round(t, seed=3)
    assert state.serve_wait == 0
    assert speed(state) == pytest.approx(t.serve_speed)


# Walls -----------------------------------------------------------------------


def test_a_quiet_tick_returns_the_shared_empty_tuple() -> None:
    state = in_play(x=400.0, y=300.0, vx=3.0, vy=1.0)
    assert step(state, T, 0.3, -0.2) is NO_EVENTS


def test_top_wall_reflects() -> None:
    state = in_play(x=400.0, y=T.ball_min_y + 2.0, vx=1.0, vy=-5.0)
    step(state, T, 0.0, 0.0)
    assert state.ball_y == pytest.approx(T.ball_min_y + 3.0)
    assert state.ball_vy == 5.0


def test_bottom_wall_reflects() -> None:
    state = in_play(x=400.0, y=T.ball_max_y - 1.0, vx=-1.0, vy=4.0)
    step(state, T, 0.0, 0.0)
    assert state.ball_y == pytest.approx(T.ball_max_y - 3.0)
    assert state.ball_vy == -4.0


def test_many_reflections_in_one_tick() -> None:
    span = T.ball_max_y - T.ball_min_y
    # Down the whole span, back up it, then down a quarter of it.
    state = in_play(x=400.0, y=T.ball_min_y, vx=0.0, vy=2.25 * span)
    step(state, T, 0.0, 0.0)
    assert state.ball_y == pytest.approx(T.ball_min_y + 0.25 * span)
    assert state.ball_vy > 0
    # Up by three and a half spans: top, bottom, top, then half way down.
    state = in_play(x=400.0, y=T.ball_max_y, vx=0.0, vy=-3.5 * span)
    step(state, T, 0.0, 0.0)
    assert state.ball_y == pytest.approx(T.ball_min_y + 0.5 * span)
    assert state.ball_vy > 0


# Scoring ---------------------------------------------------------------------


def test_ball_past_the_left_goal_line_scores_for_the_right() -> None:
    state = in_play(x=4.0, y=300.0, vx=-5.0, vy=0.0, paddles=(100.0, 300.0))
    events = step(state, T, 0.0, 0.0)
    assert events == (Scored(1, (0, 1)),)
    assert state.score == [0, 1]
    assert (state.ball_x, state.ball_y) == (400.0, 300.0)
    assert (state.ball_vx, state.ball_vy) == (0.0, 0.0)
    assert state.serve_wait == T.serve_delay_ticks

    # The next serve goes toward the side that conceded.
    for _ in range(T.serve_delay_ticks):
        step(state, T, 0.0, 0.0)
    assert state.ball_vx < 0


def test_ball_past_the_right_goal_line_scores_for_the_left() -> None:
    state = in_play(x=796.0, y=30.0, vx=5.0, vy=0.0)
    assert step(state, T, 0.0, 0.0) == (Scored(0, (1, 0)),)
    for _ in range(T.serve_delay_ticks):
        step(state, T, 0.0, 0.0)
    assert state.ball_vx > 0


def test_ball_reaching_the_goal_line_exactly_has_not_scored_yet() -> None:
    state = in_play(x=5.0, y=300.0, vx=-5.0, vy=0.0, paddles=(100.0, 300.0))
    assert step(state, T, 0.0, 0.0) == ()
    assert state.ball_x == 0.0
    assert step(state, T, 0.0, 0.0) == (Scored(1, (0, 1)),)


def test_missed_ball_travels_behind_the_paddle_then_scores() -> None:
    state = in_play(x=60.0, y=500.0, vx=-10.0, vy=0.0, paddles=(100.0, 300.0))
    events: list[object] = []
    for _ in range(10):
        events += step(state, T, 0.0, 0.0)
        if events:
            break
        assert state.ball_x >= 0.0
    assert events == [Scored(1, (0, 1))]


def test_round_ends_at_points_to_win() -> None:
    t = Rules(points_to_win=3, serve_delay=0.1).ticked()
    state = new_round(t, seed=9)
    seen: list[object] = []
    for _ in range(10_000):
        # Both paddles hide at the top, so every serve scores eventually.
        seen += step(state, t, -1.0, -1.0)
        if state.finished:
            break
    assert state.finished
    winner = state.winner_side
    assert winner is not None
    assert state.score[winner] == 3
    assert state.score[1 - winner] < 3
    final = (state.score[0], state.score[1])
    assert seen[-1] == RoundOver(winner, final)
    assert seen[-2] == Scored(winner, final)
    assert [e for e in seen if isinstance(e, Scored)][-1].score == final

    frozen = astuple(state)
    for _ in range(100):
        assert step(state, t, 1.0, 1.0) is NO_EVENTS
    assert astuple(state) == frozen


# Paddle hits -----------------------------------------------------------------


def aim_at_left(offset: float, t: TickRules = T, v: float = 5.0) -> RoundState:
    """A ball one tick's travel away from the left face, level with ``offset``.

    ``offset`` is where it will meet the paddle, in units of the reach
    (paddle half height plus ball half size) from the paddle centre.
    """
    reach = t.paddle_half + t.ball_half
    y = 300.0 + offset * reach
    contact = t.left_face + t.ball_half
    return in_play(t, x=contact + 0.5 * v, y=y, vx=-v, vy=0.0)


def test_centre_hit_goes_straight_back() -> None:
    state = aim_at_left(0.0)
    assert step(state, T, 0.0, 0.0) == (PaddleHit(0),)
    assert state.ball_vx > 0
    assert state.ball_vy == pytest.approx(0.0)
    # Half the tick to the face, the other half away from it.
    assert state.ball_x == pytest.approx(LEFT_CONTACT + 0.5 * speed(state))


@pytest.mark.parametrize("offset", [-0.95, -0.5, -0.1, 0.1, 0.5, 0.95])
def test_bounce_angle_follows_the_hit_offset(offset: float) -> None:
    state = aim_at_left(offset)
    assert step(state, T, 0.0, 0.0) == (PaddleHit(0),)
    angle = math.degrees(math.atan2(state.ball_vy, state.ball_vx))
    assert angle == pytest.approx(offset * RULES.max_bounce_angle)
    # y grows downward: a hit near the top edge sends the ball up.
    assert (state.ball_vy < 0) == (offset < 0)


def test_right_paddle_returns_the_ball_leftward() -> None:
    state = in_play(x=RIGHT_CONTACT - 2.0, y=300.0 + 0.5 * REACH, vx=4.0, vy=0.0)
    assert step(state, T, 0.0, 0.0) == (PaddleHit(1),)
    assert state.ball_vx < 0
    assert state.ball_vy > 0
    assert state.ball_x <= RIGHT_CONTACT


def test_edge_of_the_reach_hits_and_just_beyond_misses() -> None:
    state = aim_at_left(0.999)
    assert step(state, T, 0.0, 0.0) == (PaddleHit(0),)
    state = aim_at_left(1.001)
    assert step(state, T, 0.0, 0.0) == ()
    assert state.ball_x < LEFT_CONTACT


def test_speed_grows_on_each_hit_and_is_capped() -> None:
    state = aim_at_left(0.0)
    step(state, T, 0.0, 0.0)
    assert speed(state) == pytest.approx(5.0 * RULES.ball_speed_up)

    state = aim_at_left(0.0, v=T.max_speed * 0.99)
    step(state, T, 0.0, 0.0)
    assert speed(state) == pytest.approx(T.max_speed)


def test_a_long_rally_never_exceeds_max_speed() -> None:
    t = Rules(serve_delay=0.0, ball_speed_up=1.5).ticked()
    state = new_round(t, seed=2)
    hits = 0
    for _ in range(2000):
        # Perfect players: each paddle follows the ball.
        moves = [(state.ball_y - y) / t.paddle_step for y in state.paddle_y]
        hits += len(step(state, t, moves[0], moves[1]))
        assert speed(state) <= t.max_speed + 1e-9
    assert hits > 10
    assert state.score == [0, 0]
    assert speed(state) == pytest.approx(t.max_speed)


# No tunnelling ---------------------------------------------------------------


@pytest.mark.parametrize("tick_rate", [60, 10, 1])
@pytest.mark.parametrize("times_max", [1.0, 10.0])
@pytest.mark.parametrize("offset", [-0.99, -0.5, 0.0, 0.7, 0.99])
def test_fast_ball_at_the_paddle_is_always_reflected(
    tick_rate: int, times_max: float, offset: float
) -> None:
    t = Rules(tick_rate=tick_rate).ticked()
    reach = t.paddle_half + t.ball_half
    v = t.max_speed * times_max
    contact = t.left_face + t.ball_half
    # Far more than the paddle's thickness per tick, so a test of where the
    # ball ends the tick would see it behind the paddle.
    assert v > 2 * (t.left_face - RULES.paddle_inset)
    x = min(contact + 0.3 * v, 400.0)
    state = in_play(t, x=x, y=300.0 + offset * reach, vx=-v, vy=0.0)
    events = step(state, t, 0.0, 0.0)
    assert events[0] == PaddleHit(0)
    assert not any(isinstance(e, Scored) and e.side == 1 for e in events)
    assert state.ball_x >= contact


@pytest.mark.parametrize("tick_rate", [60, 10])
def test_fast_ball_hits_after_a_wall_bounce_in_the_same_tick(tick_rate: int) -> None:
    t = Rules(tick_rate=tick_rate).ticked()
    # Mirror the paddle centre in the top wall: a straight line to the mirror
    # image is a path that bounces off the top wall into the paddle centre.
    paddle_y = 100.0
    contact = t.left_face + t.ball_half
    start_x, start_y = contact + 100.0, 60.0
    dx = contact - start_x
    dy = (2 * t.ball_min_y - paddle_y) - start_y
    v = 10 * t.max_speed
    norm = math.hypot(dx, dy)
    assert norm < v  # the whole path fits in one tick
    state = in_play(
        t,
        x=start_x,
        y=start_y,
        vx=v * dx / norm,
        vy=v * dy / norm,
        paddles=(paddle_y, 300.0),
    )
    events = step(state, t, 0.0, 0.0)
    assert events[0] == PaddleHit(0)
    assert state.ball_vx > 0
    assert state.ball_vy == pytest.approx(0.0, abs=1e-9)  # a centre hit


def test_missed_fast_ball_scores_without_a_hit() -> None:
    t = Rules(tick_rate=10).ticked()
    state = in_play(t, x=400.0, y=560.0, vx=-10 * t.max_speed, vy=0.0)
    assert step(state, t, 0.0, 0.0) == (Scored(1, (0, 1)),)
