from dataclasses import astuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sim.game import Game, GameEnded, RoundEnded, RoundStarted
from server.sim.pong import PaddleHit, RoundOver, Scored, derive_seed
from server.sim.rules import Rules
from server.sim.tournament import RoundResult, overall_winner, standings

QUICK = Rules(points_to_win=2, serve_delay=0.1, round_break=0.5)


def bot_moves(game: Game, trackers: set[int]) -> list[float]:
    """Seats in ``trackers`` follow the ball; everyone else stands still."""
    moves = [0.0] * game.n_players
    r = game.round
    t = game.tick_rules
    for side, seat in enumerate((game.left_seat, game.right_seat)):
        if seat in trackers:
            moves[seat] = (r.ball_y - r.paddle_y[side]) / t.paddle_step
    return moves


def run(game: Game, trackers: set[int], limit: int = 100_000) -> list[object]:
    events: list[object] = []
    while not game.finished and game.tick < limit:
        events += game.step(bot_moves(game, trackers))
    return events


def test_three_players_play_three_rounds_and_the_tracker_wins() -> None:
    game = Game(QUICK, 3, seed=11)
    assert game.schedule == [(2, 1), (2, 0), (0, 1)]
    events = run(game, trackers={0})

    assert game.finished
    started = [e for e in events if isinstance(e, RoundStarted)]
    ended = [e.result for e in events if isinstance(e, RoundEnded)]
    assert [(e.index, e.left, e.right) for e in started] == [
        (0, 2, 1),
        (1, 2, 0),
        (2, 0, 1),
    ]
    assert [r.index for r in ended] == [0, 1, 2]
    assert ended == game.results
    for r in ended:
        assert max(r.score) == 2
        assert not r.forfeit
        assert r.winner == (r.left if r.score[0] > r.score[1] else r.right)
    assert [r.winner for r in ended if 0 in (r.left, r.right)] == [0, 0]
    assert not any(isinstance(e, RoundOver) for e in events)

    last = events[-1]
    assert isinstance(last, GameEnded)
    assert last.winner == game.winner == 0
    assert last.standings == tuple(standings(3, game.results))
    assert last.standings[0].wins == 2

    tick = game.tick
    assert game.step([1.0, 1.0, 1.0]) == ()
    assert game.tick == tick


def test_round_started_comes_on_the_first_step() -> None:
    game = Game(QUICK, 2, seed=1)
    assert game.step([0.0, 0.0]) == (RoundStarted(0, 0, 1),)
    assert game.tick == 1
    assert game.round.serve_wait == QUICK.ticked().serve_delay_ticks - 1


def test_break_between_rounds_keeps_the_ended_round_in_view() -> None:
    game = Game(QUICK, 3, seed=4)
    t = game.tick_rules
    ended_at = started_at = None
    while started_at is None:
        events = game.step(bot_moves(game, {1}))
        if any(isinstance(e, RoundEnded) for e in events):
            # The final Scored of a round reads against that round.
            assert isinstance(events[-2], Scored)
            ended_at = game.tick
            assert game.round_index == 0
            assert game.round.finished
            assert game.in_break
        elif ended_at is not None:
            if any(isinstance(e, RoundStarted) for e in events):
                started_at = game.tick
            else:
                assert events == ()
                # The break lasts until round 1 starts, its last tick too:
                # round 0 is over, not in play again.
                assert game.in_break
                assert game.round_index == 0
    assert ended_at is not None
    assert started_at - ended_at == t.round_break_ticks + 1
    assert game.round_index == 1
    assert not game.in_break


def test_no_break_when_round_break_is_zero() -> None:
    game = Game(Rules(points_to_win=1, serve_delay=0.0, round_break=0.0), 3, 2)
    events = run(game, trackers=set())
    kinds = [type(e) for e in events if not isinstance(e, PaddleHit | Scored)]
    assert kinds == [RoundStarted, RoundEnded] * 3 + [GameEnded]
    assert not game.in_break


def test_each_round_has_its_own_derived_seed() -> None:
    game = Game(QUICK, 3, seed=99)
    seeds = []
    for _ in range(3):
        while True:
            events = game.step(bot_moves(game, set()))
            if any(isinstance(e, RoundStarted) for e in events):
                break
        seeds.append(game.round.seed)
        assert game.round.seed == derive_seed(99, game.round_index)
    assert len(set(seeds)) == 3


def test_same_seed_and_moves_replay_identically() -> None:
    def trace(seed: int) -> list[object]:
        game = Game(QUICK, 4, seed)
        out: list[object] = []
        for _ in range(3000):
            moves = bot_moves(game, {1})
            moves[3] = ((game.tick * 7919) % 201 - 100) / 100
            out.append((game.step(moves), astuple(game.round), game.round_index))
        return out

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_moves_must_cover_every_seat() -> None:
    game = Game(QUICK, 3, seed=1)
    with pytest.raises(ValueError):
        game.step([0.0, 0.0])


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError):
        Game(Rules(points_to_win=0), 2, seed=1)
    with pytest.raises(ValueError):
        Game(QUICK, 1, seed=1)


# Forfeits --------------------------------------------------------------------


def no_ball_in_play(game: Game) -> bool:
    """The ball stands at the centre, neither moving nor waiting for a serve."""
    r, t = game.round, game.tick_rules
    centred = (r.ball_x, r.ball_y) == (t.field_width / 2, t.field_height / 2)
    return centred and r.ball_vx == r.ball_vy == 0.0 and r.serve_wait == 0


def play_until_a_point(game: Game) -> None:
    while not any(isinstance(e, Scored) for e in game.step(bot_moves(game, set()))):
        pass


def test_forfeit_mid_round_gives_the_opponent_the_round() -> None:
    rules = Rules(points_to_win=5, serve_delay=0.1, round_break=0.5)
    game = Game(rules, 3, seed=3)
    play_until_a_point(game)
    score = (game.round.score[0], game.round.score[1])
    left, right = game.left_seat, game.right_seat

    events = game.forfeit(left)
    result = RoundResult(0, left, right, score, winner=right, forfeit=True)
    assert events == (RoundEnded(result),)
    assert game.results == [result]
    assert game.round.finished
    assert no_ball_in_play(game)  # as after a round's last point
    assert game.in_break


def test_forfeit_marks_later_rounds_as_they_come_up() -> None:
    game = Game(QUICK, 3, seed=3)
    # Seat 0 is not in round 0 (2 v 1): nothing happens yet.
    assert game.forfeit(0) == ()
    steps = []
    while not game.finished:
        steps.append(game.step(bot_moves(game, set())))
    events = [e for step in steps for e in step]

    started = [e.index for e in events if isinstance(e, RoundStarted)]
    assert started == [0]  # rounds 1 and 2 involve seat 0 and are not played
    results = game.results
    assert [r.index for r in results] == [0, 1, 2]
    assert not results[0].forfeit
    assert results[1] == RoundResult(1, 2, 0, (0, 0), winner=2, forfeit=True)
    assert results[2] == RoundResult(2, 0, 1, (0, 0), winner=1, forfeit=True)
    assert game.winner == overall_winner(3, results)

    # Nothing was left to play after round 0, so the game ended in the step
    # that ended it, without a break.
    last = steps[-1]
    assert isinstance(last[-5], Scored)
    assert last[-4:-1] == tuple(RoundEnded(r) for r in results)
    assert isinstance(last[-1], GameEnded)
    assert not game.in_break


def test_forfeit_ending_the_last_playable_round_ends_the_game_at_once() -> None:
    game = Game(QUICK, 2, seed=8)
    game.step([0.0, 0.0])
    events = game.forfeit(1)
    assert len(events) == 2
    assert events[0] == RoundEnded(RoundResult(0, 0, 1, (0, 0), 0, forfeit=True))
    assert isinstance(events[1], GameEnded)
    assert events[1].winner == 0
    assert game.finished
    assert game.winner == 0
    assert game.step([0.0, 0.0]) == ()
    assert game.forfeit(0) == ()


def test_forfeit_before_round_0_begins_ends_it_and_the_break_follows() -> None:
    game = Game(QUICK, 4, seed=5)
    assert game.schedule[:2] == [(0, 3), (2, 1)]
    # Round 0 has had no tick yet, but it is the current round: it ends now.
    events = game.forfeit(0)
    assert events == (RoundEnded(RoundResult(0, 0, 3, (0, 0), 3, forfeit=True)),)
    assert game.round_index == 0
    assert game.round.finished
    assert no_ball_in_play(game)
    assert game.in_break
    for _ in range(game.tick_rules.round_break_ticks):
        assert game.step([0.0] * 4) == ()
    assert game.step([0.0] * 4) == (RoundStarted(1, 2, 1),)


def test_forfeit_before_the_first_step_and_by_both_seats() -> None:
    game = Game(QUICK, 3, seed=3)
    assert game.forfeit(0) == ()  # not in round 0 (2 v 1), which stays playable
    # Round 0 ends, and then no round is playable: all are recorded at once.
    events = game.forfeit(2)
    assert game.forfeit(2) == ()  # twice is the same as once
    assert [type(e) for e in events] == [RoundEnded] * 3 + [GameEnded]
    # Round 0 (2 v 1) goes to seat 1. Round 1 (2 v 0) lost both seats:
    # recorded, won by its left seat. Round 2 (0 v 1): seat 1 wins.
    assert [r.winner for r in game.results] == [1, 2, 1]
    assert all(r.forfeit and r.score == (0, 0) for r in game.results)
    assert game.finished
    assert game.winner == 1
    assert game.step([0.0, 0.0, 0.0]) == ()


def test_forfeit_during_the_break_applies_when_the_round_comes_up() -> None:
    game = Game(QUICK, 4, seed=5)
    assert game.schedule[:4] == [(0, 3), (2, 1), (2, 0), (1, 3)]
    while not game.in_break:
        game.step(bot_moves(game, set()))
    assert game.forfeit(2) == ()
    for _ in range(game.tick_rules.round_break_ticks):
        assert game.step(bot_moves(game, set())) == ()
    assert game.in_break
    events = game.step(bot_moves(game, set()))
    assert events == (
        RoundEnded(RoundResult(1, 2, 1, (0, 0), 1, forfeit=True)),
        RoundEnded(RoundResult(2, 2, 0, (0, 0), 0, forfeit=True)),
        RoundStarted(3, 1, 3),
    )
    assert game.round_index == 3


def test_forfeit_leaving_nothing_to_play_during_the_break_ends_the_game() -> None:
    game = Game(QUICK, 3, seed=5)
    while not game.in_break:
        game.step(bot_moves(game, set()))
    # Rounds 1 (2 v 0) and 2 (0 v 1) both need seat 0.
    events = game.forfeit(0)
    assert events[:2] == (
        RoundEnded(RoundResult(1, 2, 0, (0, 0), 2, forfeit=True)),
        RoundEnded(RoundResult(2, 0, 1, (0, 0), 1, forfeit=True)),
    )
    assert isinstance(events[2], GameEnded)
    assert game.finished
    assert not game.in_break


def test_forfeit_of_an_unknown_seat_is_an_error() -> None:
    game = Game(QUICK, 2, seed=1)
    with pytest.raises(ValueError):
        game.forfeit(2)
    with pytest.raises(ValueError):
        game.forfeit(-1)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=6),
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    plan=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 5)), max_size=8, unique=True
    ),
)
def test_any_forfeits_leave_one_result_per_round(
    n: int, seed: int, plan: list[tuple[int, int]]
) -> None:
    rules = Rules(points_to_win=1, serve_delay=0.0, round_break=0.1, tick_rate=30)
    game = Game(rules, n, seed)
    forfeits = sorted((tick, seat % n) for tick, seat in plan)
    events: list[object] = []
    for tick in range(600):
        while forfeits and forfeits[0][0] == tick:
            events += game.forfeit(forfeits.pop(0)[1])
        events += game.step([-1.0] * n)
    # Whatever is still running is ended by everyone leaving.
    for seat in range(n):
        events += game.forfeit(seat)

    assert game.finished
    assert [r.index for r in game.results] == list(range(len(game.schedule)))
    ended = [e.result for e in events if isinstance(e, RoundEnded)]
    assert ended == game.results
    for r in game.results:
        assert (r.left, r.right) == game.schedule[r.index]
        assert r.winner in (r.left, r.right)
    assert sum(isinstance(e, GameEnded) for e in events) == 1
    assert isinstance(events[-1], GameEnded) or game.step([0.0] * n) == ()
    assert game.winner == overall_winner(n, game.results)
