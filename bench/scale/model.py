"""The scale model: for one protected service, which AWS limit binds first, and where.

Pure arithmetic, no AWS. Every figure it starts from is in ``AWS_LIMITS`` with the page that
states it; ``docs/scale.md`` explains the model and prints its tables (``python -m bench.scale``).

What one call costs, read off the workflow (``statemachine/circuit_breaker.asl.json``):

- every attempt begins with one ``GetCircuitStatus`` (an eventually consistent GetItem of the
  circuit item): one read per healthy call, ``attempts`` reads per call that fails every attempt;
- a failed attempt with attempts left writes the circuit item once (``CountFailedAttempt``);
  the last failure runs RecordFailure (one consistent read and one conditional write);
- the success path on a closed circuit writes nothing;
- one execution is in flight for as long as the call lasts: the service's latency when it
  answers, up to ``attempts * timeout`` plus the retry waits when it hangs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Limit:
    name: str
    value: float
    unit: str
    source: str
    note: str = ""


#: The AWS figures the model starts from, with the documentation that states them.
AWS_LIMITS: dict[str, Limit] = {
    "partition_read_units": Limit(
        "Read request units per partition",
        3000,
        "RRU/s",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
        "Each partition is limited to 3,000 read units/s and 1,000 write units/s, in provisioned and "
        "on-demand mode alike (also https://repost.aws/knowledge-center/on-demand-table-throttling-dynamodb).",
    ),
    "partition_write_units": Limit(
        "Write request units per partition",
        1000,
        "WRU/s",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
    ),
    "eventually_consistent_reads_per_unit": Limit(
        "Eventually consistent reads of an item up to 4 KB per read unit",
        2,
        "reads/RRU",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html",
        "A strongly consistent read of up to 4 KB costs one read unit, an eventually consistent one half. "
        "GetCircuitStatus reads without ConsistentRead; RecordFailure and ClaimProbe read consistently.",
    ),
    "hot_key_throttle_reason": Limit(
        "A single partition key over the partition limit is throttled (KeyRangeThroughputExceeded)",
        1,
        "key",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-key-range-limit-exceeded-mitigation.html",
        "Throttled requests fail with ProvisionedThroughputExceededException and a throttling reason; "
        "an item is never split across partitions.",
    ),
    "express_concurrency": Limit(
        "Concurrent Synchronous Express executions (per account and Region)",
        1000,
        "executions",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        "The issue's figure (1,000 to a few thousand by default, raisable). Not confirmed word for "
        "word in the documentation searched for this model: read the quota for your Region in the "
        "Service Quotas console and pass it as `concurrency`.",
    ),
    "express_payload_bytes": Limit(
        "StartSyncExecution input (and state data)",
        262144,
        "bytes",
        "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html",
    ),
    "express_duration_seconds": Limit(
        "Longest Synchronous Express execution",
        300,
        "s",
        "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-express-synchronous.html",
    ),
}


@dataclass(frozen=True, kw_only=True)
class Load:
    """One protected service under load."""

    calls_per_second: float
    latency_seconds: float = 0.1
    """How long the service takes to answer when it answers."""
    timeout_seconds: float = 3.0
    attempts: int = 3
    retry_delays_seconds: tuple[float, ...] = (1.0, 2.0)
    failing: bool = False
    """True: every attempt times out (a hanging service, before its circuit opens)."""
    read_shards: int = 1
    concurrency: float = AWS_LIMITS["express_concurrency"].value
    """The Region's Synchronous Express concurrency available to this service."""
    partition_read_units: float = AWS_LIMITS["partition_read_units"].value
    partition_write_units: float = AWS_LIMITS["partition_write_units"].value
    workflow_overhead_seconds: float = 0.05
    """Step Functions' own time per execution (state transitions, the GetItem)."""


@dataclass(frozen=True)
class Ceiling:
    limit: str
    calls_per_second: float
    """The call rate at which this limit is reached (``inf``: never on this path)."""
    what_a_caller_sees: str


@dataclass(frozen=True)
class Verdict:
    load: Load
    ceilings: list[Ceiling] = field(default_factory=list)

    @property
    def binding(self) -> Ceiling:
        """The limit reached first as the call rate grows."""
        return min(self.ceilings, key=lambda c: c.calls_per_second)

    @property
    def ceiling(self) -> float:
        return self.binding.calls_per_second

    @property
    def exceeded(self) -> list[Ceiling]:
        """The limits the load's call rate is over, first reached first."""
        over = [c for c in self.ceilings if self.load.calls_per_second > c.calls_per_second]
        return sorted(over, key=lambda c: c.calls_per_second)


READS_THROTTLED = (
    "GetCircuitStatus is retried twice (1 s, 2 s, jittered), then ReportStoreFault runs and the "
    "service's storeFaultPolicy decides: `call` (the service is called unchecked) or `fail_fast` "
    "(CircuitStoreUnavailable)."
)
WRITES_THROTTLED = (
    "CountFailedAttempt's write fails and is caught: the retry goes on uncounted (the fleet-wide "
    "early open degrades to failureThreshold after all attempts); RecordFailure is retried twice, "
    "then logs RecordFailureFailed and the caller still gets the service's own error."
)
CONCURRENCY_EXHAUSTED = (
    "StartSyncExecution is refused before any state runs (a throttling error from the Step "
    "Functions API, which the caller's SDK retries with its own backoff); nothing is read or called."
)


def execution_seconds(load: Load) -> float:
    """How long one execution is in flight (Little's law's W)."""
    if not load.failing:
        return load.latency_seconds + load.workflow_overhead_seconds
    waits = sum(load.retry_delays_seconds[: load.attempts - 1])
    return load.attempts * load.timeout_seconds + waits + load.workflow_overhead_seconds


def reads_per_call(load: Load) -> float:
    """GetCircuitStatus reads per call (eventually consistent)."""
    return float(load.attempts if load.failing else 1)


def writes_per_call(load: Load) -> float:
    """Writes to the circuit item per call: none on success; on a call that fails every attempt,
    CountFailedAttempt per failed attempt with attempts left, and RecordFailure's write."""
    return float(load.attempts) if load.failing else 0.0


def read_ceiling(load: Load) -> float:
    """Calls/s at which the circuit's items' partitions run out of read units: each call reads one
    of ``read_shards`` items picked at random, so the load spreads over them (when they sit on
    distinct partitions, see docs/scale.md)."""
    reads_per_unit = AWS_LIMITS["eventually_consistent_reads_per_unit"].value
    per_item = load.partition_read_units * reads_per_unit
    return load.read_shards * per_item / reads_per_call(load)


def write_ceiling(load: Load) -> float:
    """Calls/s at which the circuit item runs out of write units. Counter and RecordFailure writes
    go to the base item only (shard 0); a change of circuit state is copied to every shard, but
    that happens a few times per outage, not per call."""
    per_call = writes_per_call(load)
    return load.partition_write_units / per_call if per_call else float("inf")


def concurrency_ceiling(load: Load) -> float:
    return load.concurrency / execution_seconds(load)


def evaluate(load: Load) -> Verdict:
    return Verdict(
        load,
        [
            Ceiling("circuit item reads", read_ceiling(load), READS_THROTTLED),
            Ceiling("circuit item writes", write_ceiling(load), WRITES_THROTTLED),
            Ceiling("Express concurrency", concurrency_ceiling(load), CONCURRENCY_EXHAUSTED),
        ],
    )


def shards_needed(load: Load, *, headroom: float = 0.8) -> int:
    """The smallest ``read_shards`` whose read ceiling, times ``headroom``, carries the load."""
    k = 1
    while read_ceiling(replace(load, read_shards=k)) * headroom < load.calls_per_second:
        k += 1
    return k
