"""Micro-benchmarks of the per-tick work, one piece at a time.

``python -m bench.micro`` times, with plain ``time.perf_counter`` loops:

- ``Game.step`` of one two-player game whose paddles both follow the ball,
  and of 450 such games stepped in turn (the work of one server tick at
  450 rooms, without the network);
- ``protocol.pack_snapshot``, one SNAPSHOT serialized;
- ``protocol.decode`` of one INPUT frame's payload, checks included.

Each figure is the best of several repeats: the fastest repeat is the one
least disturbed by the rest of the machine, which is what a comparison
between two versions of the code needs. The loop's own overhead is included,
as it is in the server. HTTP create/join throughput is measured with wrk
instead (bench/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import msgpack

from server import protocol
from server.sim.game import Game
from server.sim.rules import Rules

REPEATS = 5
MANY_GAMES = 450
SPREAD_TICKS = 1200  # the many games start up to this many ticks apart


def follow_ball(game: Game, moves: list[float]) -> None:
    """Set both playing seats' moves toward the ball, as the load bots do."""
    r = game.round
    step = game.tick_rules.paddle_step
    for side, seat in enumerate((game.left_seat, game.right_seat)):
        move = (r.ball_y - r.paddle_y[side]) / step
        moves[seat] = 1.0 if move > 1.0 else -1.0 if move < -1.0 else move


def new_game(seed: int) -> Game:
    # 99 points so a game never ends inside a timing loop.
    return Game(Rules(points_to_win=99), 2, seed)


def best_of(run: Callable[[], float]) -> float:
    """The least seconds one call of ``run`` reports, over REPEATS calls."""
    return min(run() for _ in range(REPEATS))


def time_one_game(steps: int) -> float:
    """Seconds per step of one game, policy included."""

    def run() -> float:
        game, moves = new_game(1), [0.0, 0.0]
        start = time.perf_counter()
        for _ in range(steps):
            follow_ball(game, moves)
            game.step(moves)
        return (time.perf_counter() - start) / steps

    return best_of(run)


def time_many_games(games: int, ticks: int) -> float:
    """Seconds to step ``games`` games once each (one server tick's sim work)."""

    def run() -> float:
        pool = [(new_game(seed), [0.0, 0.0]) for seed in range(games)]
        # Games on a server are at different points of play (waiting to
        # serve, in a rally, a fast ball); start each at a different one.
        for seed, (game, moves) in enumerate(pool):
            for _ in range(seed * 7 % SPREAD_TICKS):
                follow_ball(game, moves)
                game.step(moves)
        start = time.perf_counter()
        for _ in range(ticks):
            for game, moves in pool:
                follow_ball(game, moves)
                game.step(moves)
        return (time.perf_counter() - start) / ticks

    return best_of(run)


def time_pack_snapshot(count: int) -> tuple[float, int]:
    """Seconds per SNAPSHOT serialized, and its size in bytes."""
    pack = protocol.pack_snapshot
    ball = (412.25, 288.5, -6.4, 2.1)
    paddles = (300.0, 281.75)

    def run() -> float:
        start = time.perf_counter()
        for tick in range(100_000, 100_000 + count):
            pack(tick, 0, ball, paddles, (3, 4), (tick - 1, tick - 2), 0)
        return (time.perf_counter() - start) / count

    size = len(pack(100_000, 0, ball, paddles, (3, 4), (99_999, 99_998), 0))
    return best_of(run), size


def time_decode_input(
    count: int, decode: Callable[[bytes], object] = protocol.decode
) -> tuple[float, int]:
    """Seconds per INPUT payload decoded and checked, and its size."""
    # What the load bots send: seq as uint32, move as float64.
    frames = [
        msgpack.packb([protocol.INPUT, seq, 0.25]) for seq in range(1000, 1000 + 256)
    ]

    def run() -> float:
        start = time.perf_counter()
        for i in range(count):
            decode(frames[i & 255])
        return (time.perf_counter() - start) / count

    return best_of(run), len(frames[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.micro", description="Time the per-tick work."
    )
    p.add_argument(
        "--quick", action="store_true", help="a tenth of the iterations (a smoke run)"
    )
    a = p.parse_args(argv)
    scale = 10 if a.quick else 1

    one = time_one_game(200_000 // scale)
    many = time_many_games(MANY_GAMES, 600 // scale)
    pack, pack_size = time_pack_snapshot(500_000 // scale)
    decode, input_size = time_decode_input(500_000 // scale)
    plain, _ = time_decode_input(500_000 // scale, protocol.decode_plain_input)

    rows = [
        ("Game.step, 1 game", f"{1 / one:,.0f} steps/s", f"{one * 1e6:.2f} us/step"),
        (
            f"Game.step, {MANY_GAMES} games",
            f"{MANY_GAMES / many:,.0f} steps/s",
            f"{many * 1e3:.2f} ms/tick",
        ),
        (
            f"pack_snapshot ({pack_size} B)",
            f"{1 / pack:,.0f} msg/s",
            f"{pack * 1e9:.0f} ns/msg",
        ),
        (
            f"decode INPUT ({input_size} B)",
            f"{1 / decode:,.0f} msg/s",
            f"{decode * 1e9:.0f} ns/msg",
        ),
        (
            f"decode_plain_input INPUT ({input_size} B)",
            f"{1 / plain:,.0f} msg/s",
            f"{plain * 1e9:.0f} ns/msg",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'rate':>18}  {'time':>14}")
    for name, rate, each in rows:
        print(f"{name:<{width}}  {rate:>18}  {each:>14}")
    print(f"(best of {REPEATS} repeats; Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
