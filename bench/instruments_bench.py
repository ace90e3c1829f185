"""What csms_kit's instruments cost: server CPU per heartbeat round trip, metrics and
tracing on against off, in one run.

The ``heartbeat`` scenario of ``bench/server_bench.py`` (its rigs, load generator and
CPU accounting, imported from there): 100 stations send back-to-back Heartbeats to each
server in turn, in rounds of one window per server, the order rotating every round, so
that drift and neighbours' load hit every server alike. The servers, each in a process
of its own and up at the same time:

* ``floor``: the bare websockets server (for scale, as in ``server_bench.py``);
* ``csms_kit``: ``serve()`` with the bench sessions, no instrument;
* ``csms_kit+metrics``: the same with ``csms_kit.metrics.PrometheusMetrics``;
* ``csms_kit+tracing``: the same with ``csms_kit.tracing.OpenTelemetryTracing`` on
  the OpenTelemetry SDK (a ``BatchSpanProcessor``, spans dropped by the exporter),
  every trace sampled;
* ``csms_kit+tracing_sampled``: the same, 1% of the traces sampled;
* ``csms_kit+metrics+tracing``: both.

Each server reports its own CPU time (``getrusage``: all threads, so the span
processor's thread counts). The figure is CPU per round trip, as a ratio to plain
csms_kit: over all rounds, and the range of the per-round (paired) ratios. The issue's
target: metrics cost at most 10% more CPU per heartbeat.

Run from the repository root::

    python bench/instruments_bench.py              # 7 rounds of 4 s, ~4 min
    python bench/instruments_bench.py --quick      # smoke run, ~20 s
    python bench/instruments_bench.py --rounds 11 --json out.json
    python bench/instruments_bench.py --variants csms_kit+metrics --rounds 15
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from connection_memory import BenchError, environment
from server_bench import Rig, Settings, interleaved, log, table

#: (server kind, instruments) of each server measured, in this order.
VARIANTS = (
    ("floor", ""),
    ("csms_kit", ""),
    ("csms_kit", "metrics"),
    ("csms_kit", "tracing"),
    ("csms_kit", "tracing_sampled"),
    ("csms_kit", "metrics,tracing"),
)
REFERENCE = "csms_kit"
#: The issue's target: metrics on costs at most this much CPU per round trip.
TARGET_METRICS = 1.10


def label(kind: str, instruments: str) -> str:
    return "+".join([kind, *filter(None, instruments.split(","))])


async def measure(
    settings: Settings,
    rounds: int,
    variants: Sequence[tuple[str, str]] = VARIANTS,
    period: float = 0.0,
) -> dict[str, Any]:
    """Every variant up at once, measured in interleaved rounds; the results."""
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    env = environment()
    rigs = [Rig(kind, "none", settings, instruments) for kind, instruments in variants]
    started = time.perf_counter()
    result = await interleaved(
        "heartbeat",
        "idle" if period else "heartbeat",
        settings.heartbeat_stations,
        period,
        settings.heartbeat_window,
        rounds,
        settings,
        rigs,
    )
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["environment"] = env
    return result


def ratios(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each server's CPU per round trip against plain csms_kit: overall and per round."""
    servers = result["servers"]
    reference = servers[REFERENCE]
    out = {}
    for label, server in servers.items():
        paired = [
            mine / theirs
            for mine, theirs in zip(
                server["cpu_us_per_rt_rounds"], reference["cpu_us_per_rt_rounds"], strict=True
            )
        ]
        out[label] = {
            "ratio": server["cpu_us_per_rt"] / reference["cpu_us_per_rt"],
            "paired_min": min(paired),
            "paired_max": max(paired),
            "paired_median": sorted(paired)[len(paired) // 2],
        }
    return out


def render(result: dict[str, Any]) -> str:
    servers = result["servers"]
    figures = ratios(result)
    rows = []
    for label, server in servers.items():
        r = figures[label]
        rows.append(
            [
                label,
                f"{server['cpu_us_per_rt']:.1f}",
                f"{r['ratio']:.3f}x",
                f"{r['paired_median']:.3f}x",
                f"{r['paired_min']:.2f}-{r['paired_max']:.2f}x",
                f"{server['round_trips']:,}",
                f"{server['msgs_per_s']:,.0f}",
                f"{server['latency']['p50']:.2f}",
                f"{server['latency']['p99']:.2f}",
            ]
        )
    header = [
        "server",
        "CPU µs/round trip",
        "vs csms_kit",
        "median of rounds",
        "per round",
        "round trips",
        "round trips/s",
        "p50 ms",
        "p99 ms",
    ]
    env = result["environment"]
    verdicts = ""
    for name in ("metrics", "tracing", "tracing_sampled", "metrics+tracing"):
        figure = figures.get(f"{REFERENCE}+{name}")
        if figure is None:
            continue
        verdicts += (
            f"\n{name} on / off: {figure['ratio']:.3f}x CPU per heartbeat round trip "
            f"(median of the rounds' ratios {figure['paired_median']:.3f}x)"
        )
        if name == "metrics":
            verdict = "met" if figure["ratio"] <= TARGET_METRICS else "NOT met"
            verdicts += f"; target <= {TARGET_METRICS:.2f}x: {verdict}"
    return (
        f"Run of {env['when']}: {env['csms_kit']}, Python {env['python']}, "
        f"{env['cpus']} CPUs, load average {env['loadavg'][0]:.2f} at start; "
        f"{result['stations']} stations, {len(servers[REFERENCE]['cpu_us_per_rt_rounds'])} "
        f"rounds of {result['window_s']:g} s; {result['seconds']:.0f} s.\n\n"
        + table(header, rows)
        + "\n"
        + verdicts
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale, ~20 s: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: 7; quick 1)")
    parser.add_argument("--window", type=float, default=None, help="seconds per window")
    parser.add_argument(
        "--period",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="each station sends a Heartbeat every SECONDS instead of back-to-back: every "
        "server then handles the same rate, whatever the machine's load (default: 0)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    names = [label(kind, instruments) for kind, instruments in VARIANTS]
    parser.add_argument(
        "--variants",
        default=",".join(names),
        help=f"servers to measure, comma-separated, among {', '.join(names)} (default: all; "
        f"{REFERENCE} is always measured)",
    )
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.variants.split(",") if name.strip()} | {REFERENCE}
    unknown = sorted(chosen - set(names))
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    variants = [v for v in VARIANTS if label(*v) in chosen]
    settings = Settings.quick() if args.quick else Settings.full()
    if args.window is not None:
        settings = dataclasses.replace(settings, heartbeat_window=args.window)
    rounds = args.rounds or (1 if args.quick else 7)
    try:
        result = asyncio.run(
            asyncio.wait_for(measure(settings, rounds, variants, args.period), settings.deadline)
        )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130
    result["ratios"] = ratios(result)
    result["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    print(render(result))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
