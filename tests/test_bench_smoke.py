"""The load generator runs end to end: a real server, three games, three seconds.

Not a performance test: it checks that the bench still speaks the protocol,
that every field of the report is there, and that games actually flowed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The report's contract with bench/README.md and with anyone diffing runs.
FIELDS = {
    "rooms",
    "rooms_started",
    "clients",
    "window_s",
    "tick_rate",
    "snapshots_per_client_s",
    "clients_below_min_rate",
    "missing_ticks",
    "tick_lateness_s",
    "tick_duration_s",
    "wakeups",
    "overruns",
    "skipped_ticks",
    "dropped_snapshots",
    "input_rtt_s",
    "server_cpu",
    "server_rss_bytes",
    "server_rss_idle_bytes",
    "rss_per_client_bytes",
    "bytes_out_per_tick",
    "generator_cpu",
    "server_core",
    "generator_core",
    "generator_bound",
    "errors",
    "error_codes",
    "unexpected_closes",
    "held",
    "verdict",
    "noisy",
    "server_pinned",
    "generator_pinned",
    "server_commit",
}


def test_load_smoke(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--spawn",
        "--rooms",
        "3",
        "--duration",
        "3",
        "--warmup",
        "1",
        "--json",
        str(out),
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr

    report = json.loads(out.read_text())
    missing = FIELDS - report.keys()
    assert not missing, missing
    assert report["rooms_started"] == 3
    assert report["clients"] == 6
    assert report["snapshots_per_client_s"]["min"] > 0
    assert report["snapshots_per_client_s"]["median"] > 0
    assert report["input_rtt_s"]["samples"] > 0
    assert report["wakeups"] > 0
    assert report["errors"] == 0, report["error_codes"]
    assert report["unexpected_closes"] == 0
    assert report["server_cpu"] is not None
    assert report["server_rss_bytes"] > 0
    assert "snapshots/s per client" in result.stdout
