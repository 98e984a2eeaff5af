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
import json
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sfn_breaker.contract import DEMO_SERVICE_OUTPUT, TABLE_OUTPUT
from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.assembly import Assembly, synth


class ServiceDown(RuntimeError):
    """What the dead service raises on every call."""


class DeadService:
    """The demo service, gone down: every call fails, and the time each call reached it is kept."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        with self._lock:
            self.times.append(time.monotonic())
            n = len(self.times)
        raise ServiceDown(f"the service is down (call {n})")


def finish(sfn: Any, arn: str, timeout: float) -> str | None:
    """Wait for an execution's end; its error (``None`` when it succeeded)."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            error: str | None = described.get("error")
            return error
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout} s")
        time.sleep(0.01)


def storm(assembly: Assembly, callers: int, spread: float) -> dict[str, float]:
    service = DeadService()
    opened_at: list[float] = []
    with LocalBreaker(assembly=assembly) as local:
        local.runtime.stand_in(local.stack.outputs[DEMO_SERVICE_OUTPUT], service)
        table_name = local.stack.outputs[TABLE_OUTPUT]
        machine_arn = local.stack.state_machine_arn
        stop = threading.Event()

        # Clients without the endpoint: moto answers them in this process, with no HTTP round trip.
        table = local.session.client("dynamodb")
        sfn = local.session.client("stepfunctions")

        def watch() -> None:
            while not stop.is_set() and not opened_at:
                item = table.get_item(TableName=table_name, Key={"ServiceName": {"S": "payment"}}).get("Item")
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
            body = json.dumps({"ServiceName": "payment", "Payload": {}})
            arns[i] = sfn.start_execution(stateMachineArn=machine_arn, name=f"b-{uuid.uuid4()}", input=body)[
                "executionArn"
            ]

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        errors = [finish(sfn, arn, timeout=120) for arn in arns]
        stop.set()
        watcher.join()
    opened = opened_at[0] if opened_at else float("inf")
    return {
        "circuit opened after (s)": round(opened - start, 1),
        "last call reached the service after (s)": round(max(service.times) - start, 1),
        "calls reaching the dead service": len(service.times),
        "of which before the circuit opened": sum(1 for t in service.times if t < opened),
        "executions that failed fast": sum(1 for e in errors if e == "CircuitOpen"),
        "executions that failed after trying": sum(1 for e in errors if e not in (None, "CircuitOpen")),
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
