"""``GET /metrics``: the Prometheus text format, through prometheus_client.

The hot path only bumps plain integers (``server.net.context.Metrics``) and the
scheduler hands each wake-up's lateness and duration to two histograms. A
custom collector reads the integers when Prometheus scrapes, so a busy tick
pays nothing for counters nobody is reading yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .context import Context

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; a tick at 60 Hz has 16.7 ms, so the buckets resolve the first few.
_TICK_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.0167, 0.033, 0.1, 1.0,
)  # fmt: skip


class ServerMetrics:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.registry = CollectorRegistry(auto_describe=False)
        self.tick_duration = Histogram(
            "pong_tick_duration_seconds",
            "Time to run one scheduler wake-up (every due tick of every room).",
            buckets=_TICK_BUCKETS,
            registry=self.registry,
        )
        self.tick_lateness = Histogram(
            "pong_tick_lateness_seconds",
            "How late a scheduler wake-up was after its tick's deadline.",
            buckets=_TICK_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Counters(context))
        context.service.scheduler.observers.append(self.observe_tick)

    def observe_tick(self, lateness: float, took: float) -> None:
        self.tick_lateness.observe(lateness)
        self.tick_duration.observe(took)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Counters(Collector):
    def __init__(self, context: Context) -> None:
        self.context = context

    def collect(self) -> Iterator[Metric]:
        context = self.context
        m = context.metrics
        service = context.service
        scheduler = service.scheduler

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, value=value)

        yield gauge("pong_running_games", "Games being ticked.", len(scheduler.rooms))
        yield gauge("pong_open_lobbies", "Lobbies in memory.", len(service.lobbies))
        yield gauge("pong_connections", "Open TCP connections.", m.connections)
        yield gauge("pong_websockets", "Open WebSockets.", m.sockets)
        yield counter("pong_ticks", "Server ticks run.", scheduler.tick)
        yield counter(
            "pong_skipped_ticks", "Ticks skipped after stalls.", scheduler.skipped
        )
        yield counter("pong_frames_in", "WebSocket messages received.", m.frames_in)
        yield counter("pong_frames_out", "WebSocket messages sent.", m.frames_out)
        yield counter("pong_bytes_in", "WebSocket payload bytes received.", m.bytes_in)
        yield counter("pong_bytes_out", "WebSocket payload bytes sent.", m.bytes_out)
        yield counter(
            "pong_dropped_snapshots",
            "Snapshots skipped for sockets over their send buffer bound.",
            m.dropped_snapshots,
        )
        yield counter(
            "pong_lobbies_created", "Lobbies created.", service.counters.lobbies_created
        )
        yield counter(
            "pong_games_started", "Games started.", service.counters.games_started
        )
        yield counter(
            "pong_games_finished",
            "Games played to the end.",
            service.counters.games_finished,
        )
        yield counter(
            "pong_games_failed",
            "Games ended by a server error.",
            service.counters.games_failed,
        )
        errors = CounterMetricFamily(
            "pong_errors", "Errors sent to clients, by code.", labels=["code"]
        )
        for code, n in sorted(m.errors.items()):
            errors.add_metric([code], n)
        yield errors
        responses = CounterMetricFamily(
            "pong_http_responses", "HTTP responses, by status.", labels=["status"]
        )
        for status, n in sorted(m.http_responses.items()):
            responses.add_metric([str(status)], n)
        yield responses
