"""CPU per heartbeat round trip: the ASGI endpoint under uvicorn against ``serve()``.

The ``heartbeat`` scenario of ``bench/server_bench.py``, on its machinery (rigs, load
generator, server CPU from ``getrusage`` in each server's own process): stations send
Heartbeats back to back, rounds of one window per server, the servers interleaved,
in one run. Three servers:

* ``floor``: the bare ``websockets`` server of server_bench (the stack's limit);
* ``csms_kit``: ``serve()``;
* ``csms_kit_asgi``: ``csms_kit.asgi.ocpp_endpoint`` as uvicorn's top-level app
  (uvicorn's websockets-sansio protocol, its default; access log off).

Run from the repository root::

    python bench/asgi_bench.py            # 100 stations, 5 rounds of 4 s
    python bench/asgi_bench.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from connection_memory import BenchError
from server_bench import Rig, Settings, interleaved, table

KINDS = ("floor", "csms_kit", "csms_kit_asgi")


async def run(settings: Settings) -> dict[str, object]:
    rigs = [Rig(kind, "none", settings) for kind in KINDS]
    return await interleaved(
        "heartbeat",
        "heartbeat",
        settings.heartbeat_stations,
        0.0,
        settings.heartbeat_window,
        settings.heartbeat_rounds,
        settings,
        rigs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings.full()
    try:
        result = asyncio.run(asyncio.wait_for(run(settings), settings.deadline))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    servers = result["servers"]
    assert isinstance(servers, dict)
    floor = servers["floor"]["cpu_us_per_rt"]
    serve = servers["csms_kit"]["cpu_us_per_rt"]
    rows = [
        [
            kind,
            f"{s['cpu_us_per_rt']:.1f}",
            f"{s['cpu_us_per_rt'] / floor:.2f}x",
            f"{s['cpu_us_per_rt'] / serve:.2f}x",
            " / ".join(f"{v:.1f}" for v in s["cpu_us_per_rt_rounds"]),
            f"{s['msgs_per_s']:,.0f}",
            f"{s['latency']['p50']} / {s['latency']['p99']}",
        ]
        for kind, s in servers.items()
    ]
    header = ["server", "CPU µs/round trip", "vs floor", "vs serve()", "per round", "msgs/s"]
    print(table([*header, "p50 / p99 ms"], rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
