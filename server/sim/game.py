"""A whole game: every round of the round-robin schedule, one after another.

Theory of operation. ``step`` is called once per tick and the game is
always in one of four phases:

- a round is due: the next step first records as forfeited any due rounds
  with a seat that has forfeited, then starts the next playable round
  (``round_index`` and ``round`` move to it), emits ``RoundStarted`` and
  plays the round's first tick, all in that one step.
- in a round: the step is the round's step, its events passed through. When
  the round ends the game records a ``RoundResult`` and emits ``RoundEnded``.
- in the break (``in_break``): from the step that ends a round until the
  step that starts the next, which comes after ``round_break_ticks`` steps
  in which nothing moves. ``round_index`` and ``round`` still show the
  round just ended, so events from the step that ended it, and views drawn
  during the break, read against the round they belong to; that round is
  over, and no round is in play until the next one starts.
- finished: after the last round ``GameEnded`` names the winner, and steps do
  nothing.

A forfeit ends the forfeiting seat's round at once if it is being played, or
if it is round 0 still waiting for its first tick (round 0 is the current
round from the start: its seats are the ones the game shows, and a break
follows its end as any other's), and marks the seat so its later rounds are
recorded as forfeits, 0-0, when they come up. A round whose two seats have
both forfeited is recorded as won by its left seat, so that every scheduled
round has exactly one result. When no playable round is left the game ends at
once rather than after a break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import pong
from .rules import Rules
from .tournament import RoundResult, Standing, overall_winner, round_robin
from .tournament import standings as rank

_NOTHING: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class RoundStarted:
    index: int
    left: int
    right: int


@dataclass(frozen=True, slots=True)
class RoundEnded:
    result: RoundResult


@dataclass(frozen=True, slots=True)
class GameEnded:
    winner: int
    standings: tuple[Standing, ...]


class Game:
    """One game between ``n_players`` seats; ``step`` it once per tick."""

    def __init__(self, rules: Rules, n_players: int, seed: int) -> None:
        self.rules = rules
        self.tick_rules = rules.ticked()
        self.n_players = n_players
        self.seed = seed
        self.schedule = round_robin(n_players)
        self.round_index = 0
        # The seats of round ``round_index``: plain attributes, not derived on
        # each read, because every INPUT of every player checks them.
        self.left_seat, self.right_seat = self.schedule[0]
        self.round = pong.new_round(self.tick_rules, pong.derive_seed(seed, 0))
        self.results: list[RoundResult] = []
        self.tick = 0
        self.finished = False
        self.winner: int | None = None
        self.in_break = False
        # The index of the round the next step starts, or None while a round
        # is being played.
        self._due: int | None = 0
        self._break_left = 0
        self._forfeited: set[int] = set()

    def step(self, moves: Sequence[float]) -> tuple[object, ...]:
        """Advance one tick. ``moves`` holds one move in [-1, 1] per seat.

        Only the two seats of the current round are read. Returns the round's
        ``PaddleHit``/``Scored`` events and the game's own events, in order.
        """
        if self.finished:
            return _NOTHING
        if len(moves) != self.n_players:
            raise ValueError(f"expected {self.n_players} moves, got {len(moves)}")
        self.tick += 1

        if self.in_break:
            if self._break_left > 0:
                self._break_left -= 1
                return _NOTHING
            self.in_break = False

        if self._due is not None:
            events = self._start_due_round(self._due)
            if self.finished:
                return events
            return events + self._play(moves)
        return self._play(moves)

    def forfeit(self, seat: int) -> tuple[object, ...]:
        """Forfeit ``seat``'s current round if it is in it, and its later ones.

        Returns the events this causes at once (``RoundEnded``, perhaps
        ``GameEnded``). Rounds later in the schedule are forfeited by ``step``
        when they come up, or at once if no round left is playable. Forfeiting
        twice, or after the game, does nothing.
        """
        if not 0 <= seat < self.n_players:
            raise ValueError(f"no seat {seat} in a game of {self.n_players}")
        if self.finished or seat in self._forfeited:
            return _NOTHING
        self._forfeited.add(seat)

        if self._due is not None and self._due != self.round_index:
            # In the break after a round: if this leaves nothing worth
            # playing, record the rest now rather than after a break that
            # leads nowhere.
            if self._playable_from(self._due):
                return _NOTHING
            self.in_break = False
            return self._forfeit_from(self._due)[0]
        if seat not in (self.left_seat, self.right_seat):
            return _NOTHING
        # The seat's round ends now, whether it is being played or is round 0
        # before its first tick (the one due round that is already current),
        # and the break before the next round follows.
        self._due = None
        loser_side = 0 if seat == self.left_seat else 1
        pong.end_round(self.round, self.tick_rules, 1 - loser_side)
        return self._end_round(forfeit=True)

    # Phases ----------------------------------------------------------------

    def _play(self, moves: Sequence[float]) -> tuple[object, ...]:
        left, right = self.schedule[self.round_index]
        events = pong.step(self.round, self.tick_rules, moves[left], moves[right])
        if not self.round.finished:
            return events
        # The round's RoundOver is replaced by the game's RoundEnded, which
        # says the same in seats rather than sides.
        passed = tuple(e for e in events if not isinstance(e, pong.RoundOver))
        return passed + self._end_round(forfeit=False)

    def _start_due_round(self, index: int) -> tuple[object, ...]:
        events, index = self._forfeit_from(index)
        if self.finished:
            return events
        self.round_index = index
        self.round = pong.new_round(self.tick_rules, pong.derive_seed(self.seed, index))
        self._due = None
        left, right = self.left_seat, self.right_seat = self.schedule[index]
        return (*events, RoundStarted(index, left, right))

    def _end_round(self, forfeit: bool) -> tuple[object, ...]:
        """Record the current round, which has finished; then break or end."""
        state = self.round
        left, right = self.schedule[self.round_index]
        winner = left if state.winner_side == 0 else right
        score = (state.score[0], state.score[1])
        result = RoundResult(self.round_index, left, right, score, winner, forfeit)
        self.results.append(result)
        ended: tuple[object, ...] = (RoundEnded(result),)

        following = self.round_index + 1
        if not self._playable_from(following):
            # No round left worth a break: record the rest and end now.
            return ended + self._forfeit_from(following)[0]
        self._due = following
        self._break_left = self.tick_rules.round_break_ticks
        self.in_break = True
        return ended

    def _forfeit_from(self, index: int) -> tuple[tuple[object, ...], int]:
        """Record due rounds from ``index`` that a forfeited seat is in.

        They are never played, so ``round_index`` and ``round`` stay as they
        are. Returns the events and the first playable index; if there is
        none, the game ends and the events include ``GameEnded``.
        """
        events: tuple[object, ...] = _NOTHING
        while index < len(self.schedule) and self._involves_forfeit(index):
            left, right = self.schedule[index]
            only_left_gone = right not in self._forfeited
            winner = right if only_left_gone else left
            result = RoundResult(index, left, right, (0, 0), winner, forfeit=True)
            self.results.append(result)
            events += (RoundEnded(result),)
            index += 1
        if index == len(self.schedule):
            self.finished = True
            self._due = None
            self.winner = overall_winner(self.n_players, self.results)
            table = tuple(rank(self.n_players, self.results))
            events += (GameEnded(self.winner, table),)
        return events, index

    def _playable_from(self, index: int) -> bool:
        return any(
            not self._involves_forfeit(i) for i in range(index, len(self.schedule))
        )

    def _involves_forfeit(self, index: int) -> bool:
        left, right = self.schedule[index]
        return left in self._forfeited or right in self._forfeited
