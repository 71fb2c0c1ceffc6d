"""One round of Pong between a left paddle (side 0) and a right paddle (side 1).

Theory of operation. ``step`` advances a ``RoundState`` by one tick, in place:

1. Each paddle moves by its move (clamped to [-1, 1]) times the paddle step,
   and is clamped inside the field. The paddles then stand still for the rest
   of the tick: collision uses these positions.
2. While ``serve_wait`` counts down the ball stays at the centre. When it
   reaches zero the ball is served toward ``serve_to`` at the serve speed, at
   an angle drawn from a pure PRNG of (seed, serves), so a replay with the same
   seed serves identically.
3. The ball moves through the tick as a sequence of events found by sweeping,
   never by testing where it ends up, so no speed lets it tunnel:

   - Walls only flip the sign of vy and never change vx, so the ball's y at
     any time is a closed-form fold of the straight path into the strip
     between the walls, however many reflections that takes.
   - The only things x can meet are the paddle face in front of the ball and,
     once the ball is past that face, the goal line. The time to the next of
     these is exact because x moves linearly. At a face the ball is hit if its
     y at that moment (after any wall reflections) is within the paddle's half
     height plus the ball's half size; the ball is then placed on the face,
     turned according to where it hit, and spends the rest of the tick moving
     with its new velocity, which may meet walls or the other paddle.
   - When the ball's centre crosses a goal line the other side scores, the
     ball returns to the centre and waits ``serve_delay_ticks``; the rest of
     that tick is dropped. A side reaching ``points_to_win`` ends the round.

Known simplifications, chosen for a game that reads well rather than for
physics: only the paddles' inner faces are solid. A ball that has passed a
face is lost; it may overlap the paddle's end while it travels to the goal
line, and a paddle moving onto a ball does not push it. Paddle motion is not
swept in time either: a paddle that moves this tick is where it ends the tick
for the whole of the ball's sweep. Lifting either would mean colliding moving
boxes against each other, which Pong players do not miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .rules import TickRules

_MASK64 = (1 << 64) - 1

# Serve draws use separate streams of the PRNG so that the direction of the
# first serve and the angles of every serve are independent of each other.
_STREAM_ANGLE = 0
_STREAM_FIRST_SIDE = 1

# More paddle hits than this in one tick only happen with rules whose ball
# crosses the field many times a tick. The ball then stops for the rest of the
# tick rather than letting one step run unbounded.
_MAX_HITS_PER_TICK = 64


@dataclass(frozen=True, slots=True)
class PaddleHit:
    side: int


@dataclass(frozen=True, slots=True)
class Scored:
    side: int  # the side that scored
    score: tuple[int, int]  # (left, right) after the point


@dataclass(frozen=True, slots=True)
class RoundOver:
    winner_side: int
    score: tuple[int, int]


Event = PaddleHit | Scored | RoundOver

NO_EVENTS: tuple[Event, ...] = ()
_HIT = ((PaddleHit(0),), (PaddleHit(1),))


@dataclass(slots=True)
class RoundState:
    """Everything about a round in progress; ``step`` mutates it in place.

    Velocities are in units per tick. ``serve_to`` is the side the next serve
    travels toward: the side that conceded the last point.
    """

    ball_x: float
    ball_y: float
    ball_vx: float
    ball_vy: float
    paddle_y: list[float]
    score: list[int]
    serve_wait: int
    serves: int
    finished: bool
    winner_side: int | None
    seed: int
    serve_to: int = 0


def mix64(seed: int, n: int) -> int:
    """The n-th 64-bit output of a splitmix64 generator started at ``seed``.

    A pure function, so any draw can be recomputed from its index alone.
    """
    z = (seed + (n + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def derive_seed(seed: int, index: int) -> int:
    """A seed for sub-part ``index`` (e.g. a round) of something seeded."""
    return mix64(seed, index)


def _unit(seed: int, n: int, stream: int) -> float:
    # 53 high bits give a float uniform in [0, 1) with every value exact.
    return (mix64(mix64(seed, stream), n) >> 11) * (1.0 / (1 << 53))


def new_round(rules: TickRules, seed: int) -> RoundState:
    """A round at its start: paddles centred, ball waiting to be served."""
    mid_y = rules.field_height / 2
    first_side = 0 if _unit(seed, 0, _STREAM_FIRST_SIDE) < 0.5 else 1
    state = RoundState(
        ball_x=rules.field_width / 2,
        ball_y=mid_y,
        ball_vx=0.0,
        ball_vy=0.0,
        paddle_y=[mid_y, mid_y],
        score=[0, 0],
        serve_wait=0,
        serves=0,
        finished=False,
        winner_side=None,
        seed=seed,
        serve_to=first_side,
    )
    _reset_ball(state, rules)
    return state


def step(
    state: RoundState, rules: TickRules, move_left: float, move_right: float
) -> tuple[Event, ...]:
    """Advance the round one tick; return what happened (usually nothing).

    After a ``RoundOver`` event the round is finished and further calls do
    nothing; the caller decides what comes next.
    """
    if state.finished:
        return NO_EVENTS

    paddles = state.paddle_y
    paddles[0] = _moved_paddle(paddles[0], move_left, rules)
    paddles[1] = _moved_paddle(paddles[1], move_right, rules)

    if state.serve_wait > 0:
        state.serve_wait -= 1
        if state.serve_wait == 0:
            _serve(state, rules)
        return NO_EVENTS
    return _move_ball(state, rules)


def end_round(state: RoundState, rules: TickRules, winner_side: int) -> None:
    """Finish the round now, won by ``winner_side``, the score as it stands.

    The last point ends a round this way, and so does a forfeit, at any
    moment. The ball goes back to the centre and stops: no ball is in play.
    """
    state.finished = True
    state.winner_side = winner_side
    state.ball_x = rules.field_width / 2
    state.ball_y = rules.field_height / 2
    state.ball_vx = 0.0
    state.ball_vy = 0.0
    state.serve_wait = 0


def _moved_paddle(y: float, move: float, rules: TickRules) -> float:
    # Moves come from the network: NaN would poison the paddle for good, and
    # anything beyond one step per tick would be a speed hack.
    if move != move:
        return y
    if move > 1.0:
        move = 1.0
    elif move < -1.0:
        move = -1.0
    y += move * rules.paddle_step
    if y < rules.paddle_min_y:
        return rules.paddle_min_y
    if y > rules.paddle_max_y:
        return rules.paddle_max_y
    return y


def _reset_ball(state: RoundState, rules: TickRules) -> None:
    state.ball_x = rules.field_width / 2
    state.ball_y = rules.field_height / 2
    state.ball_vx = 0.0
    state.ball_vy = 0.0
    state.serve_wait = rules.serve_delay_ticks
    if state.serve_wait == 0:
        _serve(state, rules)


def _serve(state: RoundState, rules: TickRules) -> None:
    angle = (2.0 * _unit(state.seed, state.serves, _STREAM_ANGLE) - 1.0) * (
        rules.serve_angle
    )
    speed = rules.serve_speed
    direction = -1.0 if state.serve_to == 0 else 1.0
    state.ball_vx = direction * speed * math.cos(angle)
    state.ball_vy = speed * math.sin(angle)
    state.serves += 1


def _advance_y(state: RoundState, rules: TickRules, t: float) -> None:
    """Move the ball's y by t ticks, reflecting off the walls as often as needed.

    The path unfolded across the walls is a straight line; folding it back
    into [0, span] gives the position, and which half of the period it lands
    in says whether an odd number of reflections reversed vy.
    """
    span = rules.ball_max_y - rules.ball_min_y
    u = state.ball_y - rules.ball_min_y + state.ball_vy * t
    if 0.0 <= u <= span:
        state.ball_y = rules.ball_min_y + u
        return
    period = 2.0 * span
    m = u % period
    if m > span:
        state.ball_y = rules.ball_min_y + (period - m)
        state.ball_vy = -state.ball_vy
    else:
        state.ball_y = rules.ball_min_y + m


def _move_ball(state: RoundState, rules: TickRules) -> tuple[Event, ...]:
    events = NO_EVENTS
    remaining = 1.0  # fraction of this tick still to travel

    for _ in range(_MAX_HITS_PER_TICK):
        x = state.ball_x
        vx = state.ball_vx

        # Find the next x event: the face ahead if the ball is still in front
        # of it, else the goal line behind it.
        if vx < 0.0:
            side = 0
            contact_x = rules.left_face + rules.ball_half
            at_face = x >= contact_x
            target = contact_x if at_face else 0.0
        elif vx > 0.0:
            side = 1
            contact_x = rules.right_face - rules.ball_half
            at_face = x <= contact_x
            target = contact_x if at_face else rules.field_width
        else:
            _advance_y(state, rules, remaining)
            return events
        t = (target - x) / vx

        # Nothing reached this tick: travel on. A ball in front of a face is
        # kept on its side of it, so rounding cannot carry it through.
        if t > remaining or (t == remaining and not at_face):
            x += vx * remaining
            if at_face:
                x = max(x, contact_x) if side == 0 else min(x, contact_x)
            else:
                x = max(x, 0.0) if side == 0 else min(x, rules.field_width)
            state.ball_x = x
            _advance_y(state, rules, remaining)
            return events

        t = max(t, 0.0)
        _advance_y(state, rules, t)
        remaining -= t

        if not at_face:
            return events + _score(state, rules, conceded=side)

        state.ball_x = contact_x
        reach = rules.paddle_half + rules.ball_half
        offset = (state.ball_y - state.paddle_y[side]) / reach
        if -1.0 <= offset <= 1.0:
            _bounce(state, rules, side, offset)
            events = events + _HIT[side]
        else:
            # Missed: from here the goal line is next. Step the ball just
            # behind the face so that neither the next pass of this loop nor
            # a later tick can take it for a ball still in front.
            state.ball_x = math.nextafter(
                contact_x, -math.inf if side == 0 else math.inf
            )

    return events


def _bounce(state: RoundState, rules: TickRules, side: int, offset: float) -> None:
    speed = math.hypot(state.ball_vx, state.ball_vy) * rules.speed_up
    if speed > rules.max_speed:
        speed = rules.max_speed
    angle = offset * rules.max_bounce
    direction = 1.0 if side == 0 else -1.0
    state.ball_vx = direction * speed * math.cos(angle)
    state.ball_vy = speed * math.sin(angle)


def _score(state: RoundState, rules: TickRules, conceded: int) -> tuple[Event, ...]:
    scorer = 1 - conceded
    state.score[scorer] += 1
    score = (state.score[0], state.score[1])
    scored = Scored(scorer, score)

    if score[scorer] >= rules.points_to_win:
        end_round(state, rules, scorer)
        return (scored, RoundOver(scorer, score))

    state.serve_to = conceded
    _reset_ball(state, rules)
    return (scored,)
