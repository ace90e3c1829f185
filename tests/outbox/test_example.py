"""examples/outbox_offline_stations.py run for real, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "outbox_offline_stations.py"


def test_the_example_delivers_after_a_restart_minus_superseded_and_expired(
    tmp_path: Path,
) -> None:
    store = tmp_path / "outbox.db"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert [(line[0], line[1], line[2]) for line in lines] == [
        ("station_001", "change_availability", "answered"),
        ("station_001", "set_configuration", "superseded"),
        ("station_001", "set_configuration", "answered"),
        ("station_002", "change_availability", "answered"),
        ("station_002", "clear_cache", "expired"),
        ("station_002", "DataTransfer", "answered"),
    ]
    assert store.is_file()  # the file named was the store
