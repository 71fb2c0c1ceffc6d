"""A running game: one simulation, the inputs for it, the sockets that hear it.

Theory of operation. The tick scheduler calls ``Room.tick`` once per server
tick. Inputs arrive between ticks through ``submit``; each seat keeps only its
latest move and sequence number, so however many inputs a client sends, one
move per seat is applied per tick (protocol.md, "Inputs"). ``tick`` steps the
simulation with those moves, turns its events into messages, serializes one
snapshot for the whole room and hands the same bytes to every socket in the
audience. Nothing here awaits or touches the store: round and game results go
to the ``RoomListener``, which writes them after the tick.

Moves and rounds. A move holds until the round it was sent in ends. One sent
before a round's first tick (from GAME_START on for round 0, in the break
for the next round) is meant for that round: its first tick applies it, and
it holds from there. The simulation starts a round and plays its first tick
in one step, so the moves to drop are dropped around it: a round's own at
its end, and at a round's start those of the seats that do not play it.

Pauses. A seat whose socket dropped is *away*. While a seat of the current
round is away the game does not step: every tick sends the same snapshot.
When the last away player of the round is back, a countdown of
``resume_ticks`` frozen ticks follows, then play goes on where it stopped.
When it forfeits instead, there is nothing to resume: its round ends, and
the game goes on at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .. import protocol
from ..sim.game import Game, GameEnded, RoundEnded, RoundStarted
from ..sim.pong import Scored
from ..sim.tournament import RoundResult, Standing
from .endpoint import Endpoint


class RoomListener(Protocol):
    def round_ended(self, room: Room, result: RoundResult) -> None: ...

    def game_ended(
        self, room: Room, winner: int, standings: tuple[Standing, ...]
    ) -> None: ...


class Room:
    """One game in play. Seats here are game seats, 0..n-1, in join order."""

    def __init__(
        self,
        game_id: str,
        mode: str,
        game: Game,
        names: Sequence[str],
        listener: RoomListener,
    ) -> None:
        n = game.n_players
        self.game_id = game_id
        self.mode = mode
        self.game = game
        self.names = list(names)
        self.listener = listener
        self.moves = [0.0] * n
        self.seqs = [0] * n  # latest input sequence received per seat
        self.acks = [0] * n  # sequence of the input applied at the last tick
        # The round whose moves ``moves`` holds, until it ends: round 0 from
        # the start, then each round from its first tick. None in a break,
        # where the moves sent are for the round to come.
        self.moves_round: int | None = 0
        self.audience: list[Endpoint] = []
        self.away: set[int] = set()  # game seats whose socket has dropped
        self.countdown = 0  # frozen ticks left before play resumes
        self.resume_ticks = game.rules.tick_rate * 3  # a three-second countdown
        self.finished = False
        self.error: BaseException | None = None

    # Inputs --------------------------------------------------------------

    def submit(self, seat: int, seq: int, move: float) -> bool:
        """Buffer one input for the next tick; False if ``seat`` is not playing.

        Only the two seats of the round in play have a paddle to move. An
        input with a sequence number not above the last one seen is old or
        repeated and is ignored (True all the same: it was no mistake), so
        reordering cannot move a paddle back.
        """
        game = self.game
        if game.finished or (seat != game.left_seat and seat != game.right_seat):
            return False
        if seq > self.seqs[seat]:
            self.seqs[seat] = seq
            self.moves[seat] = move
        return True

    def is_playing(self, seat: int) -> bool:
        game = self.game
        return not game.finished and (seat == game.left_seat or seat == game.right_seat)

    # The tick ------------------------------------------------------------

    def tick(self, server_tick: int) -> None:
        game = self.game
        if self.away and self.round_is_waiting():
            pass  # paused: the same state goes out again
        elif self.countdown:
            self.countdown -= 1
        else:
            events = game.step(self.moves)
            if events:
                self.apply(events)
            if self.finished:
                return

        left, right = game.left_seat, game.right_seat
        seqs, acks = self.seqs, self.acks
        acks[left] = seqs[left]
        acks[right] = seqs[right]
        r = game.round
        py = r.paddle_y
        score = r.score
        data = protocol.pack_snapshot(
            server_tick,
            game.round_index,
            (r.ball_x, r.ball_y, r.ball_vx, r.ball_vy),
            (py[0], py[1]),
            (score[0], score[1]),
            (acks[left], acks[right]),
            r.serve_wait,
        )
        for endpoint in self.audience:
            endpoint.send_snapshot(data)

    def round_is_waiting(self) -> bool:
        """True while a seat of the round in play is away."""
        game = self.game
        return game.left_seat in self.away or game.right_seat in self.away

    def set_away(self, seat: int, away: bool) -> None:
        """Mark a seat away or back; coming back starts the countdown."""
        was_waiting = self.round_is_waiting()
        if away:
            self.away.add(seat)
            self.moves[seat] = 0.0
        else:
            self.away.discard(seat)
        if was_waiting and not self.round_is_waiting():
            self.countdown = self.resume_ticks

    def forfeit(self, seat: int) -> None:
        """An away seat stayed away: its rounds go to their opponents.

        The seat is no longer away, but nobody came back: if the game was
        waiting for it, it goes on at once, with no countdown. Its round in
        play, or round 0 before the first tick, ends now, and the break
        before the next round follows; a break it was holding up goes on.
        """
        was_waiting = self.round_is_waiting()
        self.away.discard(seat)
        self.moves[seat] = 0.0
        if was_waiting and not self.round_is_waiting():
            self.countdown = 0
        self.apply(self.game.forfeit(seat))

    def apply(self, events: tuple[object, ...]) -> None:
        """Turn simulation events into messages and results, in order."""
        for event in events:
            if isinstance(event, RoundStarted):
                self._keep_moves_of(event.index, event.left, event.right)
                self.broadcast(self._round_start(event.index, event.left, event.right))
            elif isinstance(event, Scored):
                game = self.game
                scorer = game.left_seat if event.side == 0 else game.right_seat
                self.broadcast(
                    protocol.pack(
                        [
                            protocol.POINT,
                            {
                                "round": game.round_index,
                                "side": event.side,
                                "seat": scorer,
                                "score": list(event.score),
                            },
                        ]
                    )
                )
            elif isinstance(event, RoundEnded):
                self._drop_moves_of(event.result)
                self.broadcast(
                    protocol.pack([protocol.ROUND_END, round_view(event.result)])
                )
                self.listener.round_ended(self, event.result)
            elif isinstance(event, GameEnded):
                self.finished = True
                self.listener.game_ended(self, event.winner, event.standings)

    def _keep_moves_of(self, index: int, left: int, right: int) -> None:
        """Round ``index`` has started: only its two seats' moves stay.

        Theirs were sent for it, before its first tick (which has applied
        them); any other seat's was sent in the break for a round it does
        not play.
        """
        moves = self.moves
        for seat in range(len(moves)):
            if seat != left and seat != right:
                moves[seat] = 0.0
        self.moves_round = index

    def _drop_moves_of(self, result: RoundResult) -> None:
        """A round has ended: the moves sent for it stop with it.

        Only the round the moves were held for counts. Rounds recorded as
        forfeits without being played end in a break, or just before the
        next round starts, where the moves held are for that next round.
        """
        if result.index == self.moves_round:
            self.moves[result.left] = self.moves[result.right] = 0.0
            self.moves_round = None

    def broadcast(self, data: bytes) -> None:
        for endpoint in self.audience:
            endpoint.send(data)

    # Views ---------------------------------------------------------------

    def round_message(self) -> bytes | None:
        """ROUND_START for the round in play, for a socket that joins late."""
        game = self.game
        if game.finished or game.in_break or game.tick == 0:
            return None
        return self._round_start(game.round_index, game.left_seat, game.right_seat)

    def _round_start(self, index: int, left: int, right: int) -> bytes:
        return protocol.pack(
            [
                protocol.ROUND_START,
                {
                    "round": index,
                    "left": left,
                    "right": right,
                    "left_name": self.names[left],
                    "right_name": self.names[right],
                },
            ]
        )

    def start_message(self, you: list[int]) -> bytes:
        """GAME_START for one socket; ``you`` lists the seats it drives."""
        game = self.game
        return protocol.pack(
            [
                protocol.GAME_START,
                {
                    "game_id": self.game_id,
                    "mode": self.mode,
                    "seed": game.seed,
                    "rules": game.rules.to_wire(),
                    "players": [
                        {"seat": i, "name": name} for i, name in enumerate(self.names)
                    ],
                    "rounds": [list(pair) for pair in game.schedule],
                    "you": you,
                },
            ]
        )


def round_view(result: RoundResult) -> dict[str, object]:
    return {
        "round": result.index,
        "left": result.left,
        "right": result.right,
        "score": list(result.score),
        "winner": result.winner,
        "forfeit": result.forfeit,
    }


def standings_view(
    standings: Sequence[Standing], names: Sequence[str]
) -> list[dict[str, object]]:
    return [
        {
            "seat": s.seat,
            "name": names[s.seat],
            "wins": s.wins,
            "points_for": s.points_for,
            "points_against": s.points_against,
        }
        for s in standings
    ]
