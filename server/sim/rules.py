"""Every size, speed and count of a game, defined once.

``Rules`` holds the values people think in (units per second, seconds) and is
what clients receive at game start, so that they draw the same field the
server simulates. The simulation itself never reads seconds: ``Rules.ticked``
turns a checked ``Rules`` into ``TickRules``, the same values per tick plus the
geometry the step function needs, computed once per game.

Coordinates: the field spans x in [0, field_width] and y in [0, field_height],
origin top-left, y growing downward. The left goal line is x = 0, the right one
x = field_width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# The largest serve angle from the horizontal, in degrees. Not a rule clients
# need to know: the serve angle is visible in the ball's velocity.
SERVE_ANGLE = 30.0

_INT_FIELDS = frozenset({"points_to_win", "tick_rate"})


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules of one game. Call ``validate`` (or ``ticked``) before use."""

    field_width: float = 800.0
    field_height: float = 600.0
    paddle_width: float = 12.0  # thickness along x
    paddle_height: float = 100.0
    paddle_inset: float = 30.0  # goal line to the paddle's outer side
    paddle_speed: float = 480.0  # units per second
    ball_size: float = 12.0  # side of the square ball
    ball_speed: float = 360.0  # serve speed, units per second
    ball_speed_up: float = 1.07  # speed factor per paddle hit
    ball_max_speed: float = 1800.0  # units per second
    max_bounce_angle: float = 60.0  # degrees from the horizontal
    points_to_win: int = 5
    tick_rate: int = 60  # ticks per second
    serve_delay: float = 1.0  # seconds the ball waits before each serve
    round_break: float = 2.0  # seconds between two rounds

    def validate(self) -> None:
        """Raise ValueError naming the first value that makes no sense."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _INT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{f.name} must be an integer")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{f.name} must be a number")
            elif not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite")

        positive = (
            "field_width",
            "field_height",
            "paddle_width",
            "paddle_height",
            "paddle_speed",
            "ball_size",
            "ball_speed",
            "ball_max_speed",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("paddle_inset", "serve_delay", "round_break"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

        if self.paddle_height > self.field_height:
            raise ValueError("paddle_height must not exceed field_height")
        if self.ball_size >= self.field_height:
            raise ValueError("ball_size must be less than field_height")
        # The ball must fit between the two paddle faces, or a serve would start
        # inside a paddle.
        faces_gap = self.field_width - 2 * (self.paddle_inset + self.paddle_width)
        if faces_gap <= self.ball_size:
            raise ValueError("paddles leave no room for the ball between them")
        if self.ball_speed_up < 1.0:
            raise ValueError("ball_speed_up must be at least 1")
        if self.ball_max_speed < self.ball_speed:
            raise ValueError("ball_max_speed must be at least ball_speed")
        # At 90 degrees the ball would bounce between the walls forever.
        if not 0.0 <= self.max_bounce_angle < 90.0:
            raise ValueError("max_bounce_angle must be in [0, 90)")
        if not 1 <= self.points_to_win <= 99:
            raise ValueError("points_to_win must be in 1..99")
        if not 1 <= self.tick_rate <= 1000:
            raise ValueError("tick_rate must be in 1..1000")

    def to_wire(self) -> dict[str, float | int]:
        """Every field by name, ready for a client's game-start message."""
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Rules:
        """Rebuild and validate rules sent by ``to_wire``; ValueError if bad."""
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise ValueError("rules must name every field and nothing else")
        rules = cls(**data)
        rules.validate()
        return rules

    def ticked(self) -> TickRules:
        """Validate, then derive the per-tick values the simulation uses."""
        self.validate()
        rate = self.tick_rate
        paddle_half = self.paddle_height / 2
        ball_half = self.ball_size / 2
        max_bounce = math.radians(self.max_bounce_angle)
        return TickRules(
            field_width=float(self.field_width),
            field_height=float(self.field_height),
            paddle_half=paddle_half,
            paddle_step=self.paddle_speed / rate,
            paddle_min_y=paddle_half,
            paddle_max_y=self.field_height - paddle_half,
            left_face=float(self.paddle_inset + self.paddle_width),
            right_face=float(self.field_width - self.paddle_inset - self.paddle_width),
            ball_half=ball_half,
            ball_min_y=ball_half,
            ball_max_y=self.field_height - ball_half,
            serve_speed=self.ball_speed / rate,
            speed_up=float(self.ball_speed_up),
            max_speed=self.ball_max_speed / rate,
            max_bounce=max_bounce,
            serve_angle=min(math.radians(SERVE_ANGLE), max_bounce),
            points_to_win=self.points_to_win,
            serve_delay_ticks=_whole_ticks(self.serve_delay, rate),
            round_break_ticks=_whole_ticks(self.round_break, rate),
        )


@dataclass(frozen=True, slots=True)
class TickRules:
    """Rules in ticks and field units, derived once by ``Rules.ticked``.

    Speeds are units per tick. ``left_face`` and ``right_face`` are the x of
    the paddles' inner sides, the only sides the ball can hit.
    """

    field_width: float
    field_height: float
    paddle_half: float
    paddle_step: float
    paddle_min_y: float
    paddle_max_y: float
    left_face: float
    right_face: float
    ball_half: float
    ball_min_y: float
    ball_max_y: float
    serve_speed: float
    speed_up: float
    max_speed: float
    max_bounce: float  # radians
    serve_angle: float  # radians, the largest serve angle
    points_to_win: int
    serve_delay_ticks: int
    round_break_ticks: int


def _whole_ticks(seconds: float, rate: int) -> int:
    # Round half up rather than Python's round-half-even, so that a duration
    # maps to the tick count a person would expect.
    return math.floor(seconds * rate + 0.5)
