import json
import math
from dataclasses import fields, replace

import pytest

from server.sim.rules import Rules


def test_defaults_are_valid() -> None:
    Rules().validate()


def test_to_wire_names_every_field_with_its_value() -> None:
    rules = Rules(points_to_win=7, ball_speed=420.5, tick_rate=30)
    wire = rules.to_wire()
    assert set(wire) == {f.name for f in fields(Rules)}
    for f in fields(Rules):
        assert wire[f.name] == getattr(rules, f.name)


def test_to_wire_round_trips_through_json() -> None:
    rules = Rules(field_width=1000.0, paddle_height=80.0, points_to_win=3)
    back = Rules.from_wire(json.loads(json.dumps(rules.to_wire())))
    assert back == rules


@pytest.mark.parametrize(
    "data",
    [
        {k: v for k, v in Rules().to_wire().items() if k != "tick_rate"},
        {**Rules().to_wire(), "gravity": 9.8},
    ],
)
def test_from_wire_wants_exactly_the_fields(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Rules.from_wire(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"field_width": 0.0},
        {"field_height": -600.0},
        {"paddle_width": 0.0},
        {"paddle_height": -1.0},
        {"paddle_speed": 0.0},
        {"ball_size": 0.0},
        {"ball_speed": 0.0},
        {"ball_max_speed": -1.0},
        {"paddle_inset": -1.0},
        {"serve_delay": -0.5},
        {"round_break": -1.0},
        {"paddle_height": 601.0},
        {"ball_size": 600.0},
        {"paddle_inset": 390.0},
        {"ball_speed_up": 0.9},
        {"ball_max_speed": 100.0},
        {"max_bounce_angle": 90.0},
        {"max_bounce_angle": -1.0},
        {"points_to_win": 0},
        {"points_to_win": 100},
        {"points_to_win": 5.0},
        {"points_to_win": True},
        {"tick_rate": 0},
        {"tick_rate": 1001},
        {"ball_speed": math.nan},
        {"field_width": math.inf},
        {"ball_size": "12"},
        {"paddle_speed": False},
    ],
)
def test_validate_rejects_nonsense(changes: dict[str, object]) -> None:
    rules = replace(Rules(), **changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rules.validate()
    with pytest.raises(ValueError):
        rules.ticked()


def test_edge_values_are_accepted() -> None:
    replace(
        Rules(),
        paddle_height=600.0,
        paddle_inset=0.0,
        serve_delay=0.0,
        round_break=0.0,
        max_bounce_angle=0.0,
        ball_speed_up=1.0,
        ball_max_speed=360.0,
        points_to_win=99,
        tick_rate=1000,
    ).validate()


def test_ticked_derives_per_tick_values() -> None:
    t = Rules().ticked()
    assert t.paddle_step == pytest.approx(8.0)
    assert t.serve_speed == pytest.approx(6.0)
    assert t.max_speed == pytest.approx(30.0)
    assert t.serve_delay_ticks == 60
    assert t.round_break_ticks == 120
    assert t.left_face == 42.0
    assert t.right_face == 758.0
    assert t.paddle_min_y == 50.0
    assert t.paddle_max_y == 550.0
    assert t.ball_min_y == 6.0
    assert t.ball_max_y == 594.0
    assert t.max_bounce == pytest.approx(math.radians(60))
    assert t.serve_angle == pytest.approx(math.radians(30))
    # The max speed is more than a paddle's thickness per tick: collision
    # must be swept, as the tests in test_pong check.
    assert t.max_speed > Rules().paddle_width


def test_durations_round_half_up_to_whole_ticks() -> None:
    t = Rules(serve_delay=0.025, round_break=0.024, tick_rate=60).ticked()
    assert t.serve_delay_ticks == 2  # 1.5 ticks
    assert t.round_break_ticks == 1  # 1.44 ticks


def test_serve_angle_never_exceeds_the_bounce_angle() -> None:
    t = Rules(max_bounce_angle=20.0).ticked()
    assert t.serve_angle == pytest.approx(math.radians(20))
