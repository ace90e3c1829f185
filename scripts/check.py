"""Run every check CI runs: lint, format, types, tests with branch coverage, docs, bench smoke.

Usage (from the repository root, inside the dev environment)::

    python scripts/check.py

Each step prints its command; the first failure stops the run with its exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# Material for MkDocs prints a banner about its successor on every build.
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}

CODE = [d for d in ("src", "tests", "bench", "scripts", "examples") if (ROOT / d).is_dir()]


def steps(site_dir: str) -> list[tuple[str, list[str]]]:
    return [
        ("lint", [PY, "-m", "ruff", "check", *CODE]),
        ("format", [PY, "-m", "ruff", "format", "--check", *CODE]),
        ("types", [PY, "-m", "mypy", "--strict"]),
        ("tests", [PY, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider"]),
        ("coverage: combine", [PY, "-m", "coverage", "combine", "-q"]),
        ("coverage", [PY, "-m", "coverage", "report"]),
        ("docs", [PY, "-m", "mkdocs", "build", "--strict", "-q", "-d", site_dir]),
        ("bench smoke: protocol", [PY, "bench/protocol_bench.py", "--quick"]),
        ("bench smoke: servers", [PY, "bench/server_bench.py", "--quick"]),
        ("bench smoke: instruments", [PY, "bench/instruments_bench.py", "--quick"]),
        ("bench smoke: memory", [PY, "bench/connection_memory.py", "--quick"]),
        ("bench smoke: cluster", [PY, "bench/cluster_bench.py", "--quick"]),
        ("bench smoke: outbox", [PY, "bench/outbox_bench.py", "--quick"]),
    ]


def main() -> int:
    with tempfile.TemporaryDirectory() as site_dir:
        for name, command in steps(site_dir):
            print(f"\n=== {name}: {' '.join(command)}", flush=True)
            started = time.monotonic()
            result = subprocess.run(command, cwd=ROOT, env=ENV, check=False)
            print(f"=== {name}: exit {result.returncode} in {time.monotonic() - started:.1f}s")
            if result.returncode:
                return result.returncode
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
