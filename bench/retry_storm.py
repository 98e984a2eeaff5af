"""The retry storm: N concurrent callers against a service that has just gone down.

Counts the calls that reach the dead service, before and after its circuit opens, for two
arrival patterns: all callers at the same instant, and callers spread over the first few seconds
(traffic as it usually arrives). Runs the synthesized workflow on the in-process emulator with the
default settings (3 attempts, 1 s then 2 s backoff), so the counts are the workflow's own.

    python bench/retry_storm.py [--callers 50] [--spread 4.0]

Prints numbers, never asserts timings: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from circuit_breaker.local.assembly import synth  # noqa: E402
from tests.harness import ScriptedService, deployed_breaker  # noqa: E402


class TimedService(ScriptedService):
    """A dead service that remembers when each call reached it."""

    def __init__(self) -> None:
        super().__init__(then="fail")
        self.times: list[float] = []

    def __call__(self, event, context):  # type: ignore[no-untyped-def]
        self.times.append(time.monotonic())
        return super().__call__(event, context)


def storm(assembly, callers: int, spread: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    service = TimedService()
    opened_at: list[float] = []
    with deployed_breaker(assembly, service) as deployed:
        stop = threading.Event()

        table = deployed.session.client("dynamodb")

        def watch() -> None:
            while not stop.is_set() and not opened_at:
                item = table.get_item(TableName=deployed.table_name, Key={"ServiceName": {"S": "payment"}}).get("Item")
                if item and "ExpiryTimeStamp" in item:
                    opened_at.append(time.monotonic())
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        rng = random.Random(7)
        delays = sorted(rng.uniform(0, spread) for _ in range(callers)) if spread else [0.0] * callers
        start = time.monotonic()
        arns: list[str] = [""] * callers
        barrier = threading.Barrier(callers)

        def caller(i: int) -> None:
            barrier.wait()
            time.sleep(max(0.0, start + delays[i] - time.monotonic()))
            arns[i] = deployed.start({"ServiceName": "payment", "Payload": {}})

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = [deployed.wait(arn, timeout=120) for arn in arns]
        stop.set()
        watcher.join()
    opened = opened_at[0] if opened_at else float("inf")
    return {
        "circuit opened after (s)": round(opened - start, 1),
        "last call reached the service after (s)": round(max(service.times) - start, 1),
        "calls reaching the dead service": len(service.times),
        "of which before the circuit opened": sum(1 for t in service.times if t < opened),
        "executions that failed fast": sum(1 for r in results if r.error == "CircuitOpen"),
        "executions that failed after trying": sum(1 for r in results if r.error not in (None, "CircuitOpen")),
    }


def main() -> None:
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs every Choice path it probes
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # the handlers' own log lines
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--spread", type=float, default=4.0, help="seconds over which staggered callers arrive")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        assembly = synth(Path(out))
        rows = {
            f"{args.callers} callers at once": storm(assembly, args.callers, 0.0),
            f"{args.callers} callers over {args.spread:g} s": storm(assembly, args.callers, args.spread),
        }
    names = list(next(iter(rows.values())))
    width = max(map(len, names))
    print(f"{'':{width}}  " + "  ".join(f"{k:>24}" for k in rows))
    for name in names:
        print(f"{name:{width}}  " + "  ".join(f"{rows[k][name]:>24}" for k in rows))


if __name__ == "__main__":
    main()
