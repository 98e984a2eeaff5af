"""The embedded emulator's speed: executions per second, and closed and open call latency.

Runs the demo stack (default settings) on the in-process emulator twice in one process: at
moto's own speed (``Speedups.none()``: the definition parsed for every execution, a JSONPath
parser and a boto3 client built for every use, StartSyncExecution polling every 5 ms), and with
the emulator's speed-ups (``sfn_breaker.local.interpreter``). The service is the demo
``payment`` answering after ``--service-ms`` (100 ms). Each phase:

- **closed, N callers**: ``--callers`` threads (8) call through ``BreakerClient`` back to back for
  ``--seconds``; executions per second (counted by the emulator), and each call's latency;
- **closed, 1 caller**: one caller, ``--single`` calls in a row (latency without contention);
- **open, N callers**: the circuit held open (``force_open``), the same callers back to back:
  every call is an execution that fails fast (the client's memory of open circuits is off).

    python bench/emulator_throughput.py [--callers 8] [--seconds 20] [--no-parse-cache | --speedups-only]

Prints numbers, never asserts timings: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfn_breaker.client import BreakerClient, CircuitOpenError
from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.assembly import Assembly, synth
from sfn_breaker.local.interpreter import Speedups

SERVICE = "payment"


@dataclass
class Phase:
    executions: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.executions / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) * 1000


def client_for(local: LocalBreaker) -> BreakerClient:
    """A client that starts an execution for every call (no memory of open circuits, where it has one)."""
    kwargs: dict[str, Any] = {"max_workers": 16}
    if "remember_open_seconds" in inspect.signature(BreakerClient.__init__).parameters:
        kwargs["remember_open_seconds"] = 0
    return local.client(**kwargs)


def run_callers(
    local: LocalBreaker, client: BreakerClient, payload: dict[str, Any], callers: int, seconds: float
) -> Phase:
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(callers + 1)
    end = 0.0

    def caller() -> None:
        start.wait()
        while time.monotonic() < end:
            began = time.monotonic()
            with contextlib.suppress(CircuitOpenError):  # the open phase: every call fails fast
                client.call(SERVICE, payload)
            took = time.monotonic() - began
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    executions_before = local.sync_executions
    began = time.monotonic()
    end = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return Phase(local.sync_executions - executions_before, time.monotonic() - began, latencies)


def run_single(local: LocalBreaker, client: BreakerClient, payload: dict[str, Any], calls: int) -> Phase:
    latencies = []
    executions_before = local.sync_executions
    began = time.monotonic()
    for _ in range(calls):
        started = time.monotonic()
        client.call(SERVICE, payload)
        latencies.append(time.monotonic() - started)
    return Phase(local.sync_executions - executions_before, time.monotonic() - began, latencies)


def measure(assembly: Assembly, speedups: Speedups, args: argparse.Namespace) -> dict[str, Phase]:
    payload = {"mode": "ok", "delayMs": args.service_ms}
    with LocalBreaker(assembly=assembly, speedups=speedups) as local:
        client = client_for(local)
        for _ in range(3):  # warm up: imports, the first parse, the handlers' cold start
            client.call(SERVICE, payload)
        phases = {"closed": run_callers(local, client, payload, args.callers, args.seconds)}
        phases["closed, 1 caller"] = run_single(local, client, payload, args.single)
        client.force_open(SERVICE, for_seconds=3600, reason="benchmark")
        local.runtime.settle()  # StreamMirror has written OpenUntil: every call now fails fast
        phases["open"] = run_callers(local, client, payload, args.callers, args.seconds / 2)
        client.close(SERVICE)
    return phases


def report(results: dict[str, dict[str, Phase]], args: argparse.Namespace) -> None:
    rows: list[tuple[str, list[float], str]] = []
    for phase, callers in (("closed", args.callers), ("closed, 1 caller", 1), ("open", args.callers)):
        label = f"{phase.split(',')[0]}, {callers} caller{'s' if callers > 1 else ''}"
        values = [r[phase] for r in results.values()]
        rows.append((f"{label}: executions/s", [p.per_second for p in values], "{:.1f}"))
        rows.append((f"{label}: median ms", [p.median for p in values], "{:.0f}"))
        rows.append((f"{label}: p90 ms", [p.percentile(0.9) for p in values], "{:.0f}"))
        rows.append((f"{label}: executions", [float(p.executions) for p in values], "{:.0f}"))
    names = list(results)
    width = max(len(r[0]) for r in rows)
    header = f"{'':{width}}  " + "  ".join(f"{n:>18}" for n in names)
    if len(names) == 2:
        header += f"  {'after / before':>15}"
    print(header)
    for label, values, fmt in rows:
        line = f"{label:{width}}  " + "  ".join(f"{fmt.format(v):>18}" for v in values)
        if len(values) == 2 and values[0]:
            line += f"  {values[1] / values[0]:>14.2f}x"
        print(line)
    print(
        f"\nservice: payment answering after {args.service_ms} ms; {args.callers} callers back to back for "
        f"{args.seconds:g} s (closed) and {args.seconds / 2:g} s (open); {os.cpu_count()} CPUs"
    )


def quiet_functions() -> None:
    """Keep the in-process handlers' log and metric lines (CloudWatch's, on AWS) out of the output."""
    import aws_lambda_powertools.metrics.base as metrics_base
    import aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch as metrics_emf

    from sfn_breaker.lambdas.observability import logger

    logging.getLogger(logger.name).disabled = True
    for module in (metrics_base, metrics_emf):
        module.print = lambda *args, **kwargs: None  # type: ignore[attr-defined]


def main() -> None:
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    quiet_functions()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the closed phase runs")
    parser.add_argument("--single", type=int, default=20, help="calls in a row for the one-caller latency")
    parser.add_argument("--service-ms", type=int, default=100)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--no-parse-cache", action="store_true", help="only moto's own speed (the old behaviour)")
    which.add_argument("--speedups-only", action="store_true", help="only the emulator's speed-ups")
    args = parser.parse_args()
    variants = {"moto's own speed": Speedups.none(), "with speed-ups": Speedups()}
    if args.no_parse_cache:
        variants.pop("with speed-ups")
    if args.speedups_only:
        variants.pop("moto's own speed")
    with tempfile.TemporaryDirectory() as out:
        assembly = synth(Path(out))
        results = {name: measure(assembly, speedups, args) for name, speedups in variants.items()}
    report(results, args)


if __name__ == "__main__":
    main()
