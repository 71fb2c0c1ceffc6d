import itertools

import pytest

from server.sim.tournament import (
    RoundResult,
    Standing,
    overall_winner,
    round_robin,
    standings,
)


@pytest.mark.parametrize("n", range(2, 9))
def test_round_robin_has_every_pair_exactly_once(n: int) -> None:
    schedule = round_robin(n)
    assert len(schedule) == n * (n - 1) // 2
    pairs = [frozenset(p) for p in schedule]
    assert set(pairs) == {frozenset(p) for p in itertools.combinations(range(n), 2)}
    for left, right in schedule:
        assert left != right
        assert 0 <= left < n and 0 <= right < n


def test_two_players_play_once() -> None:
    assert round_robin(2) == [(0, 1)]


@pytest.mark.parametrize("n", [1, 0, -3])
def test_round_robin_needs_two_players(n: int) -> None:
    with pytest.raises(ValueError):
        round_robin(n)


def back_to_back(schedule: list[tuple[int, int]]) -> int:
    return sum(1 for a, b in itertools.pairwise(schedule) if set(a) & set(b))


@pytest.mark.parametrize("n", range(5, 11))
def test_nobody_plays_twice_in_a_row_from_five_players(n: int) -> None:
    assert back_to_back(round_robin(n)) == 0


@pytest.mark.parametrize("n", [3, 4])
def test_few_players_play_twice_in_a_row_only_when_unavoidable(n: int) -> None:
    # With three players every two matches share a player. With four, each
    # match has only one disjoint match, so a six-match order repeats twice.
    assert back_to_back(round_robin(n)) == 2


def test_round_robin_is_deterministic() -> None:
    assert round_robin(7) == round_robin(7)


def result(
    index: int, left: int, right: int, score: tuple[int, int], forfeit: bool = False
) -> RoundResult:
    winner = left if score[0] > score[1] else right
    return RoundResult(index, left, right, score, winner, forfeit)


def test_standing_diff() -> None:
    assert Standing(seat=0, wins=1, points_for=3, points_against=5).diff == -2


def test_most_wins_ranks_first() -> None:
    # Seat 0 has more points and a better difference; seat 1 has more wins.
    results = [
        result(0, 0, 1, (4, 5)),
        result(1, 1, 2, (5, 4)),
        result(2, 2, 0, (0, 9)),
    ]
    table = standings(3, results)
    assert table[0] == Standing(1, 2, 10, 8)
    assert table[1] == Standing(0, 1, 13, 5)
    assert [s.seat for s in table] == [1, 0, 2]
    assert overall_winner(3, results) == 1


def test_equal_wins_then_point_difference() -> None:
    # One win each. Seat 2 has the best difference, though seat 1 scored as
    # many points and sits lower.
    results = [
        result(0, 0, 1, (5, 4)),
        result(1, 1, 2, (5, 4)),
        result(2, 2, 0, (5, 0)),
    ]
    table = standings(3, results)
    assert [(s.seat, s.wins, s.diff, s.points_for) for s in table] == [
        (2, 1, 4, 9),
        (1, 1, 0, 9),
        (0, 1, -4, 5),
    ]
    assert overall_winner(3, results) == 2


def test_equal_wins_and_difference_then_points_scored() -> None:
    results = [
        result(0, 0, 2, (5, 0)),
        result(1, 1, 2, (9, 4)),
    ]
    table = standings(3, results)
    assert [(s.seat, s.wins, s.diff, s.points_for) for s in table] == [
        (1, 1, 5, 9),
        (0, 1, 5, 5),
        (2, 0, -10, 4),
    ]
    assert overall_winner(3, results) == 1


def test_all_level_then_the_lower_seat() -> None:
    results = [result(0, 2, 1, (3, 5)), result(1, 1, 2, (3, 5))]
    table = standings(3, results)
    assert [s.seat for s in table] == [1, 2, 0]
    assert table[0].wins == table[1].wins
    assert table[0].diff == table[1].diff
    assert table[0].points_for == table[1].points_for
    assert overall_winner(3, results) == 1


def test_a_forfeit_counts_as_a_win_with_the_score_as_it_stood() -> None:
    results = [RoundResult(0, 0, 1, (3, 1), winner=1, forfeit=True)]
    table = standings(2, results)
    assert table[0] == Standing(1, 1, 1, 3)
    assert table[1] == Standing(0, 0, 3, 1)


def test_no_results_rank_by_seat() -> None:
    assert [s.seat for s in standings(3, [])] == [0, 1, 2]
    assert overall_winner(3, []) == 0


def test_results_naming_unknown_seats_are_rejected() -> None:
    with pytest.raises(ValueError):
        standings(2, [result(0, 0, 2, (1, 0))])
