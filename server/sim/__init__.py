"""The pure game simulation: rules, one round of Pong, the tournament, a game.

Nothing here reads a clock, opens a socket or imports code from outside this
package; everything is counted in ticks and driven by the caller.
"""

from .game import Game, GameEnded, RoundEnded, RoundStarted
from .pong import (
    Event,
    PaddleHit,
    RoundOver,
    RoundState,
    Scored,
    end_round,
    new_round,
    step,
)
from .rules import Rules, TickRules
from .tournament import (
    RoundResult,
    Standing,
    overall_winner,
    round_robin,
    standings,
)

__all__ = [
    "Event",
    "Game",
    "GameEnded",
    "PaddleHit",
    "RoundEnded",
    "RoundOver",
    "RoundResult",
    "RoundStarted",
    "RoundState",
    "Rules",
    "Scored",
    "Standing",
    "TickRules",
    "end_round",
    "new_round",
    "overall_winner",
    "round_robin",
    "standings",
    "step",
]
