"""The round-robin schedule of a game and how its results rank the players.

Schedule. Every pair of seats meets exactly once. Pairs come from the circle
method: seat 0 stays put while the others rotate one place per circle round,
and in each circle round everyone plays at most once (with an odd number of
seats, one sits out). Circle rounds are then played one after another; inside
each, the first match is chosen so that, where possible, nobody who just
played plays again at once. With three or four seats some back-to-back
matches cannot be avoided, because every pair shares a seat with most others.

Ranking. Players are ranked, and the overall winner chosen, by:

1. most round wins;
2. then the greater point difference (points scored minus points conceded);
3. then more points scored;
4. then the lower seat, that is, the player who joined earlier.

A forfeited round counts as a win for the opponent, with the points recorded
as they stood when it was forfeited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_BYE = -1


def round_robin(n: int) -> list[tuple[int, int]]:
    """Every pair of seats 0..n-1 once, as (left_seat, right_seat), in order."""
    if n < 2:
        raise ValueError("a round robin needs at least two players")

    seats = list(range(n))
    if n % 2:
        seats.append(_BYE)
    size = len(seats)
    circle_rounds: list[list[tuple[int, int]]] = []
    ring = seats[1:]
    for r in range(size - 1):
        order = [seats[0], *ring]
        pairs = []
        for i in range(size // 2):
            a, b = order[i], order[size - 1 - i]
            if _BYE in (a, b):
                continue
            # Alternate sides so each player plays left about as often as right:
            # the fixed seat swaps every circle round, the others by position.
            swap = r % 2 == 1 if i == 0 else i % 2 == 1
            pairs.append((b, a) if swap else (a, b))
        circle_rounds.append(pairs)
        ring = ring[-1:] + ring[:-1]

    schedule: list[tuple[int, int]] = []
    for pairs in circle_rounds:
        if schedule:
            last = set(schedule[-1])
            fresh = [p for p in pairs if last.isdisjoint(p)]
            if fresh:
                pairs.remove(fresh[0])
                pairs.insert(0, fresh[0])
        schedule.extend(pairs)
    return schedule


@dataclass(frozen=True, slots=True)
class RoundResult:
    """How one scheduled round ended. ``score`` is (left, right)."""

    index: int
    left: int
    right: int
    score: tuple[int, int]
    winner: int
    forfeit: bool = False


@dataclass(frozen=True, slots=True)
class Standing:
    seat: int
    wins: int
    points_for: int
    points_against: int

    @property
    def diff(self) -> int:
        return self.points_for - self.points_against


def standings(n: int, results: Iterable[RoundResult]) -> list[Standing]:
    """Every seat's record, best first by the ranking in the module docstring."""
    wins = [0] * n
    points_for = [0] * n
    points_against = [0] * n
    for r in results:
        for seat in (r.left, r.right, r.winner):
            if not 0 <= seat < n:
                raise ValueError(f"result {r.index} names seat {seat} of {n}")
        wins[r.winner] += 1
        points_for[r.left] += r.score[0]
        points_against[r.left] += r.score[1]
        points_for[r.right] += r.score[1]
        points_against[r.right] += r.score[0]

    table = [
        Standing(seat, wins[seat], points_for[seat], points_against[seat])
        for seat in range(n)
    ]
    table.sort(key=lambda s: (-s.wins, -s.diff, -s.points_for, s.seat))
    return table


def overall_winner(n: int, results: Iterable[RoundResult]) -> int:
    """The seat ranked first; with no results at all, seat 0."""
    if n < 1:
        raise ValueError("there is no winner among no players")
    return standings(n, results)[0].seat
