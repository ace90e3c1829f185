"""What csms_kit's instruments cost: server CPU per heartbeat round trip, metrics and
tracing on against off, in one run.

The ``heartbeat`` scenario of ``bench/server_bench.py``, on its machinery (rigs, load
generator, CPU accounting, imported from there): 100 stations send Heartbeats over
loopback WebSockets, the load from another process, and the server reports its own CPU
time (``getrusage``: all threads, so the span processor's thread counts). Variants:

* ``csms_kit``: ``serve()`` with the bench sessions, no instrument;
* ``csms_kit+noop``: an instrument observing the points the metrics observe per
  message (frame received, frame sent, call finished) and doing nothing there: the
  cost of the points themselves;
* ``csms_kit+metrics``: with ``csms_kit.metrics.PrometheusMetrics``;
* ``csms_kit+tracing``: with ``csms_kit.tracing.OpenTelemetryTracing`` on the
  OpenTelemetry SDK (a ``BatchSpanProcessor``, spans dropped by the exporter), every
  trace sampled;
* ``csms_kit+tracing_sampled``: the same, 1% of the traces sampled;
* ``csms_kit+metrics+tracing``: both, every trace sampled.

Two ways to run them, one run each:

* **switched** (default): one csms_kit server process; before each window it switches
  every connection to the window's instruments. The variants differ in nothing else
  (same process, heap, connections), and their windows follow each other within
  seconds, the order rotating every round: the fairest A/B on a shared machine.
* ``--separate``: one server process per variant (plus the floor, for scale), all up
  at once, windows interleaved the same way, each server with its instruments from
  the start (as a deployment runs).

Back-to-back Heartbeats (the default) make a server's CPU per round trip depend on
how many it gets per second (busier loops batch more), and so on the machine's other
load; ``--period P`` paces each station to one Heartbeat every P seconds, so every
variant handles the same rate. The figure is CPU per round trip as a ratio to plain
csms_kit, over all rounds, with the median and range of the per-round (paired) ratios.
The issue's target: metrics cost at most 10% more CPU per heartbeat.

Run from the repository root::

    python bench/instruments_bench.py                  # switched, 9 rounds of 3 s, ~3 min
    python bench/instruments_bench.py --period 0.02    # paced: 5,000 Heartbeats/s
    python bench/instruments_bench.py --separate       # a process per variant, ~4 min
    python bench/instruments_bench.py --quick          # smoke run, ~15 s
    python bench/instruments_bench.py --variants csms_kit+metrics --rounds 21 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from connection_memory import environment
from server_bench import (
    Rig,
    Settings,
    interleaved,
    log,
    report,
    run_measurement,
    summarize_windows,
    table,
)

#: The instruments of each variant ("": none), in this order; the first is the reference.
VARIANTS = ("", "noop", "metrics", "tracing", "tracing_sampled", "metrics,tracing")
REFERENCE = "csms_kit"
#: The issue's target: metrics on costs at most this much CPU per round trip.
TARGET_METRICS = 1.10


def label(instruments: str, kind: str = "csms_kit") -> str:
    return "+".join([kind, *filter(None, instruments.split(","))])


async def switched(
    settings: Settings, rounds: int, variants: Sequence[str], mode: str, period: float
) -> dict[str, dict[str, Any]]:
    """One server; each window with the instruments of one variant, in rotating order."""
    rig = Rig("csms_kit", "none", settings)
    try:
        await rig.start()
        await rig.connect(settings.heartbeat_stations, "CP", settings.connect_concurrency)
        for instruments in variants:  # warm-up traffic, not measured
            await rig.switch_instruments(instruments)
            await rig.window(mode, period, settings.warmup_window)
        windows: dict[str, list[dict[str, Any]]] = {label(i): [] for i in variants}
        for round_ in range(rounds):
            shift = round_ % len(variants)
            for instruments in [*variants[shift:], *variants[:shift]]:
                await rig.switch_instruments(instruments)
                await rig.reset()  # latency percentiles of this window alone
                result = await rig.window(mode, period, settings.heartbeat_window)
                windows[label(instruments)].append(result)
                log(
                    f"round {round_ + 1}: {label(instruments):26} "
                    f"{result['round_trips']:7} round trips, "
                    f"{result['server_cpu'] / result['round_trips'] * 1e6:7.1f} µs CPU each"
                )
        memory = await rig.memory()
        servers = {}
        for name, results in windows.items():
            servers[name] = summary = summarize_windows(results, memory)
            # Each window's percentiles are its own: report their medians.
            summary["latency"] = {
                q: statistics.median(w["latency"][q] for w in results) for q in ("p50", "p99")
            }
        return servers
    finally:
        await rig.stop()


async def separate(
    settings: Settings, rounds: int, variants: Sequence[str], mode: str, period: float
) -> dict[str, dict[str, Any]]:
    """A server process per variant (and the floor), windows interleaved."""
    rigs = [Rig("floor", "none", settings)]
    rigs += [Rig("csms_kit", "none", settings, instruments) for instruments in variants]
    result = await interleaved(
        "heartbeat",
        mode,
        settings.heartbeat_stations,
        period,
        settings.heartbeat_window,
        rounds,
        settings,
        rigs,
    )
    servers: dict[str, dict[str, Any]] = result["servers"]
    return servers


async def measure(
    settings: Settings, rounds: int, variants: Sequence[str], period: float, how: str
) -> dict[str, Any]:
    """Measure the variants ``how`` ("switched" or "separate"); the results."""
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    env = environment()
    started = time.perf_counter()
    mode = "idle" if period else "heartbeat"
    runner = switched if how == "switched" else separate
    servers = await runner(settings, rounds, variants, mode, period)
    return {
        "environment": env,
        "how": how,
        "stations": settings.heartbeat_stations,
        "period_s": period,
        "window_s": settings.heartbeat_window,
        "rounds": rounds,
        "servers": servers,
        "seconds": round(time.perf_counter() - started, 1),
    }


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each variant's CPU per round trip against plain csms_kit: overall and per round."""
    servers = result["servers"]
    reference = servers[REFERENCE]
    out = {}
    for name, server in servers.items():
        paired = [
            mine / theirs
            for mine, theirs in zip(
                server["cpu_us_per_rt_rounds"], reference["cpu_us_per_rt_rounds"], strict=True
            )
        ]
        out[name] = {
            "ratio": server["cpu_us_per_rt"] / reference["cpu_us_per_rt"],
            "extra_us": server["cpu_us_per_rt"] - reference["cpu_us_per_rt"],
            "paired_median": statistics.median(paired),
            "paired_min": min(paired),
            "paired_max": max(paired),
        }
    return out


def render(result: dict[str, Any]) -> str:
    servers = result["servers"]
    figures = ratios(result)
    rows = []
    for name, server in servers.items():
        r = figures[name]
        rows.append(
            [
                name,
                f"{server['cpu_us_per_rt']:.1f}",
                f"{r['extra_us']:+.1f}",
                f"{r['ratio']:.3f}x",
                f"{r['paired_median']:.3f}x",
                f"{r['paired_min']:.2f}-{r['paired_max']:.2f}x",
                f"{server['msgs_per_s']:,.0f}",
                f"{server['latency']['p50']:.2f}",
                f"{server['latency']['p99']:.2f}",
            ]
        )
    header = [
        "server",
        "CPU µs/round trip",
        "µs vs csms_kit",
        "ratio",
        "median of rounds",
        "per round",
        "round trips/s",
        "p50 ms",
        "p99 ms",
    ]
    env = result["environment"]
    pace = (
        f"one Heartbeat every {result['period_s']:g} s per station"
        if result["period_s"]
        else "back-to-back Heartbeats"
    )
    lines = [
        f"Run of {env['when']}: {env['csms_kit']}, Python {env['python']}, {env['cpus']} "
        f"CPUs, load average {env['loadavg'][0]:.2f} at start; {result['how']}, "
        f"{result['stations']} stations, {pace}, {result['rounds']} rounds of "
        f"{result['window_s']:g} s; {result['seconds']:.0f} s.",
        "",
        table(header, rows),
        "",
    ]
    for instruments in VARIANTS[1:]:
        figure = figures.get(label(instruments))
        if figure is None:
            continue
        line = (
            f"{instruments.replace(',', '+')} on / off: {figure['ratio']:.3f}x CPU per "
            f"heartbeat round trip, {figure['extra_us']:+.1f} µs (median of the rounds' "
            f"ratios {figure['paired_median']:.3f}x)"
        )
        if instruments == "metrics":
            verdict = "met" if figure["ratio"] <= TARGET_METRICS else "NOT met"
            line += f"; target <= {TARGET_METRICS:.2f}x: {verdict}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale, ~15 s: a smoke run")
    parser.add_argument(
        "--separate", action="store_true", help="a server process per variant (and the floor)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: 9; quick 1)")
    parser.add_argument("--window", type=float, default=None, help="seconds per window (3)")
    parser.add_argument(
        "--period",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="each station sends a Heartbeat every SECONDS instead of back-to-back: every "
        "variant then handles the same rate, whatever the machine's load (default: 0)",
    )
    names = [label(instruments) for instruments in VARIANTS]
    parser.add_argument(
        "--variants",
        default=",".join(names),
        help=f"variants to measure, comma-separated, among {', '.join(names)} "
        f"(default: all; {REFERENCE} is always measured)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.variants.split(",") if name.strip()} | {REFERENCE}
    unknown = sorted(chosen - set(names))
    if unknown:
        parser.error(f"unknown variants: {', '.join(unknown)}")
    variants = [instruments for instruments in VARIANTS if label(instruments) in chosen]
    settings = Settings.quick() if args.quick else Settings.full()
    window = args.window or (settings.heartbeat_window if args.quick else 3.0)
    settings = dataclasses.replace(settings, heartbeat_window=window)
    rounds = args.rounds or (1 if args.quick else 9)
    how = "separate" if args.separate else "switched"
    result = run_measurement(
        measure(settings, rounds, variants, args.period, how), settings.deadline
    )
    if isinstance(result, int):
        return result
    result["ratios"] = ratios(result)
    result["loadavg_end"] = os.getloadavg()
    report(result, args.json, render)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
