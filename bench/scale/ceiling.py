"""The per-service read ceiling on the emulator, before and after read sharding.

The emulator is far too slow to reach DynamoDB's 6,000 reads a second, so the partition's limit
is scaled down instead: ``ThrottledItems`` gives every item of the circuit a token bucket of
``reads_per_second`` (its stand-in for a partition's read limit), callers call ``payment`` back to
back through ``BreakerClient`` (StartSyncExecution, as on AWS) for ``seconds``, and the reads the
circuit's items served are counted. The model says the circuit serves at most
``K x reads_per_second`` reads a second; the run says what it did. Numbers are printed, never
asserted (``tests/test_scale_sharding.py`` checks the same ceiling with a frozen clock).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from bench.scale.throttling import ThrottledItems
from sfn_breaker.core import model
from sfn_breaker.local import LocalBreaker

SERVICE = "payment"


@dataclass(frozen=True)
class Measured:
    read_shards: int
    reads_per_second: float
    seconds: float
    calls: int
    outcomes: dict[str, int]
    reads_served: int
    reads_throttled: int
    served_by_key: dict[str, int]
    throttled_by_key: dict[str, int]

    @property
    def model_ceiling(self) -> float:
        """Reads a second the circuit's items can serve, by the model."""
        return self.read_shards * self.reads_per_second

    @property
    def served_per_second(self) -> float:
        return self.reads_served / self.seconds

    @property
    def offered_per_second(self) -> float:
        return (self.reads_served + self.reads_throttled) / self.seconds

    @property
    def expected_per_second(self) -> float:
        """Reads a second the per-key token buckets (burst 1 at a rate of 1 or less) can be
        expected to serve for the load each key was offered: a key offered ``λ`` reads a second at
        random serves ``r·λ / (λ + r)`` of its ``r`` (after each served read it waits ``1/r`` for
        the token, then ``1/λ`` on average for the next read), so the model's ceiling is reached
        only when every key is offered far more than ``r``."""
        r = self.reads_per_second
        expected = 0.0
        for key, served in self.served_by_key.items():
            offered = (served + self.throttled_by_key[key]) / self.seconds
            expected += r * offered / (offered + r) if offered else 0.0
        return expected


def measure(read_shards: int, *, reads_per_second: float, callers: int, seconds: float) -> Measured:
    overrides = {"circuit-breaker": {"services": {SERVICE: {"readShards": read_shards}}}}
    keys = frozenset(model.shard_keys(SERVICE, read_shards))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    with LocalBreaker(context_overrides=overrides) as emulator:
        client = emulator.client(remember_open_seconds=0)
        client.call(SERVICE, {})  # warm: the first execution pays for set-up
        with ThrottledItems(keys, reads_per_second=reads_per_second).installed() as limit:
            started = time.monotonic()
            deadline = started + seconds

            def caller() -> None:
                while time.monotonic() < deadline:
                    try:
                        client.call(SERVICE, {})
                        outcome = "answered"
                    except Exception as exc:  # every ending is counted, none is lost
                        outcome = type(exc).__name__
                    with lock:
                        outcomes[outcome] += 1

            threads = [threading.Thread(target=caller) for _ in range(callers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            served, throttled = limit.reads()
            by_key = {key: limit.served["get_item", key] for key in sorted(keys)}
            refused_by_key = {key: limit.throttled["get_item", key] for key in sorted(keys)}
    return Measured(
        read_shards=read_shards,
        reads_per_second=reads_per_second,
        seconds=elapsed,
        calls=sum(outcomes.values()),
        outcomes=dict(outcomes),
        reads_served=served,
        reads_throttled=throttled,
        served_by_key=by_key,
        throttled_by_key=refused_by_key,
    )


def report(runs: list[Measured]) -> str:
    lines = [
        "| K | per-item limit (reads/s) | model ceiling (reads/s) | offered (reads/s) | served (reads/s) "
        "| served / ceiling | expected for the offered load (reads/s) | calls ended | outcomes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        outcomes = ", ".join(f"{name} {count}" for name, count in sorted(run.outcomes.items()))
        lines.append(
            f"| {run.read_shards} | {run.reads_per_second:g} | {run.model_ceiling:g} | {run.offered_per_second:.1f} "
            f"| {run.served_per_second:.2f} | {run.served_per_second / run.model_ceiling:.2f} "
            f"| {run.expected_per_second:.2f} | {run.calls} | {outcomes} |"
        )
    if len(runs) == 2:
        before, after = runs
        lines.append("")
        lines.append(
            f"Served reads, K={after.read_shards} over K={before.read_shards}: "
            f"{after.served_per_second / before.served_per_second:.1f} x (model: "
            f"{after.model_ceiling / before.model_ceiling:g} x, when the offered load reaches the higher ceiling)."
        )
    return "\n".join(lines)
