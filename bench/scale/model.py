"""The scale model: for one protected service, which AWS limit binds first, and where.

Pure arithmetic, no AWS. Every figure it starts from is in ``AWS_LIMITS`` with the page that
states it and the words it states it in; ``docs/scale.md`` explains the model and prints its
tables (``python -m bench.scale``). Where AWS gives a range or a per-Region figure, the model takes
the number as a parameter (``Load``).

What one call costs, read off the workflow (``statemachine/circuit_breaker.asl.json``) and the
handlers (``lambdas/record_failure.py``, ``sfn_breaker/core/store.py``):

- every attempt begins with one ``GetCircuitStatus``: an eventually consistent GetItem of one of
  the circuit's K items, drawn at random (the base item, shard 0, or a read shard);
- the success path on a closed circuit writes nothing;
- a failed attempt with attempts left runs ``CountFailedAttempt`` (one UpdateItem of the base item);
- the last failure runs RecordFailure (a Lambda): one strongly consistent GetItem of the base item,
  then one conditional PutItem of it (none when the circuit is already open);
- a DynamoDB request costs units by the item's size: a read 4 KB per unit, a write 1 KB per unit,
  an UpdateItem or PutItem the larger of the item before and after; a failing service's item holds
  its last cause (up to ``MAX_CAUSE_CHARS`` characters), so its writes cost more than one unit;
- one execution is in flight for as long as the call lasts, and each attempt holds one concurrent
  execution of the service's Lambda function for as long as the invocation runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sfn_breaker.core import model as item_format


@dataclass(frozen=True)
class Limit:
    name: str
    value: float
    unit: str
    source: str
    quote: str
    """The documentation's own words for the figure."""
    note: str = ""


#: The AWS figures the model starts from, with the documentation that states them.
AWS_LIMITS: dict[str, Limit] = {
    "partition_read_units": Limit(
        "Read units per partition",
        3000,
        "RRU/s",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
        "each partition is limited to 1,000 write units per second and 3,000 read units per second",
        "In provisioned and on-demand mode alike (also "
        "https://repost.aws/knowledge-center/on-demand-table-throttling-dynamodb).",
    ),
    "partition_write_units": Limit(
        "Write units per partition",
        1000,
        "WRU/s",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
        "each partition is limited to 1,000 write units per second and 3,000 read units per second",
    ),
    "read_unit_bytes": Limit(
        "Item size one read unit covers",
        4096,
        "bytes",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html",
        "A strongly consistent read request of an item up to 4 KB requires one read unit. An eventually "
        "consistent read request of an item up to 4 KB requires one-half read unit.",
        "GetItem is sized by the item, rounded up to the next 4 KB. GetCircuitStatus reads eventually "
        "consistently; RecordFailure and ClaimProbe read strongly consistently.",
    ),
    "write_unit_bytes": Limit(
        "Item size one write unit covers",
        1024,
        "bytes",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html",
        "One write request unit represents one write for an item up to 1 KB in size.",
        "PutItem: 'the item size that matters is the larger of the two' (before and after); UpdateItem: "
        "'The provisioned throughput consumed reflects the larger of these item sizes'.",
    ),
    "item_size_rules": Limit(
        "Item size: attribute names plus values",
        1,
        "byte per UTF-8 byte",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html",
        "The total size of an item is the sum of the lengths of its attribute names and values",
        "A string is its UTF-8 bytes; a number about 1 byte per two significant digits plus 1; a list or "
        "map 3 bytes plus 1 byte per element.",
    ),
    "hot_key_throttle_reason": Limit(
        "A single partition key over its partition's limit is throttled",
        1,
        "key",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/throttling-key-range-limit-exceeded-mitigation.html",
        "ProvisionedThroughputExceededException with the throttling reason "
        "TableReadKeyRangeThroughputExceeded / TableWriteKeyRangeThroughputExceeded",
    ),
    "lambda_concurrency": Limit(
        "Lambda concurrent executions (per account and Region, every function)",
        1000,
        "executions",
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
        "Concurrent executions / 1,000 / Tens of thousands (the quota table's row: resource / default / raisable to)",
        "Default quota, raisable; 'Quotas for concurrent executions and storage apply per AWS Region'. "
        "New accounts may start lower.",
    ),
    "express_concurrency": Limit(
        "Synchronous Express Workflows concurrent executions",
        1000,
        "executions",
        "https://github.com/awsdocs/aws-step-functions-developer-guide/blob/3d6752c179885aa864a2a49eb47a8131b5004aa0/doc_source/limits-overview.md",
        "Synchronous Express Workflows concurrent executions / 1,000-3,700 (varies per region) / Tens of "
        "thousands (the quota table's row: resource / default / raisable to)",
        "The Step Functions guide's quota table (docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html) "
        "as last published in AWS's own source repository (June 2023). Whether the current quotas page still "
        "lists it was not verified. The model takes 1,000, the low end, as its default: pass your Region's "
        "figure (Service Quotas console) as `concurrency`.",
    ),
    "express_sync_capacity": Limit(
        "StartSyncExecution rate",
        0,
        "(no figure)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-express-synchronous.html",
        "Synchronous Express execution API calls don't contribute to existing account capacity limits. "
        "Step Functions provides capacity on demand and automatically scales with sustained workload. "
        "Surges in workload may be throttled until capacity is available.",
        "No bucket size or refill rate is documented for StartSyncExecution (the quota tables give "
        "StartExecution's: 6,000 and 6,000 a second for Express), so the model has no rate ceiling for it.",
    ),
    "express_payload_bytes": Limit(
        "StartSyncExecution input (and state data)",
        262144,
        "bytes",
        "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html",
        "262,144 bytes of data as a UTF-8 encoded string",
    ),
    "express_duration_seconds": Limit(
        "Longest Synchronous Express execution",
        300,
        "s",
        "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-express-synchronous.html",
        "for a duration of up to five minutes",
    ),
    "sfn_error_chars": Limit(
        "Longest error name Step Functions reports",
        256,
        "characters",
        "https://docs.aws.amazon.com/step-functions/latest/apireference/API_TaskFailedEventDetails.html",
        "error ... Maximum length of 256",
        "RecordFailure keeps the failure's error name in LastError, and its cause (cut to "
        "MAX_CAUSE_CHARS = 2,000 characters, sfn_breaker/core/model.py) in LastCause.",
    ),
}


# --------------------------------------------------------------------------- item size


def attribute_bytes(name: str, value: Any) -> int:
    """The size of one attribute, by DynamoDB's documented rules (CapacityUnitCalculations)."""
    return len(name.encode()) + _value_bytes(value)


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        digits = len(str(abs(Decimal(value)).normalize()).replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if isinstance(value, list):
        return 3 + sum(1 + _value_bytes(v) for v in value)
    if isinstance(value, dict):
        return 3 + sum(1 + attribute_bytes(k, v) for k, v in value.items())
    raise TypeError(f"no DynamoDB size rule for {type(value).__name__}")


def item_bytes(item: dict[str, Any]) -> int:
    return sum(attribute_bytes(name, value) for name, value in item.items())


def failing_item(
    *,
    service_chars: int = 64,
    error_chars: int = int(AWS_LIMITS["sfn_error_chars"].value),
    cause_chars: int = item_format.MAX_CAUSE_CHARS,
    bytes_per_char: int = 1,
    failures: int = 1,
) -> dict[str, Any]:
    """The largest base item the breaker writes for a failing service (an operator's ``Reason``
    and half-open probe claims aside): what RecordFailure writes when it opens the circuit or
    counts a failure (``transitions.changes`` plus its ``annotate`` notes), with the attributes
    ``CountFailedAttempt`` adds. Service names are at most 64 characters (infra/settings.py);
    ``bytes_per_char`` 1 is an ASCII error and cause, 4 the UTF-8 worst case."""
    m = item_format
    stamp = "2026-12-05T10:00:00.000Z"  # reading.iso_timestamp's layout: 24 characters
    epoch = 1796524243
    return {
        m.KEY: "s" * service_chars,
        m.EXPIRY: epoch,
        m.OPEN_UNTIL: stamp,
        m.OPENS: 99,
        m.VERSION: 99_999,
        m.FAILURES: [epoch] * failures,
        m.FAILED_ATTEMPTS: 99_999,
        m.FAILED_ATTEMPTS_SINCE: stamp,
        m.OPENED_AT: stamp,
        m.LAST_FAILURE_AT: stamp,
        m.LAST_ERROR: "e" * (error_chars * bytes_per_char),
        m.LAST_CAUSE: "c" * (cause_chars * bytes_per_char),
    }


#: Worst-case base item of a failing service (ASCII error and cause): 2,569 bytes, 3 write units.
FAILING_ITEM_BYTES = item_bytes(failing_item())
#: A healthy circuit has no item; a circuit opened by a short error is a few hundred bytes at most.
SMALL_ITEM_BYTES = 400


def read_units(size: int, *, consistent: bool) -> float:
    units = math.ceil(size / AWS_LIMITS["read_unit_bytes"].value) or 1
    return float(units) if consistent else units / 2


def write_units(size: int) -> float:
    return float(math.ceil(size / AWS_LIMITS["write_unit_bytes"].value) or 1)


# --------------------------------------------------------------------------- the load


@dataclass(frozen=True, kw_only=True)
class Load:
    """One protected service under load."""

    calls_per_second: float
    latency_seconds: float = 0.1
    """How long the service takes to answer when it answers (its Lambda invocation's duration)."""
    timeout_seconds: float = 3.0
    attempts: int = 3
    retry_delays_seconds: tuple[float, ...] = (1.0, 2.0)
    failing: bool = False
    """True: every attempt times out (a hanging service, before its circuit opens)."""
    read_shards: int = 1
    base_share: float | None = None
    """The share of GetCircuitStatus reads that land on the base item: 1/K when States.MathRandom's
    end is exclusive (as AWS documents it), 2/(K+1) when it is inclusive (as on the emulator)."""
    item_bytes: int = FAILING_ITEM_BYTES
    """The base item's size while the service fails (the default: the worst case, ASCII)."""
    concurrency: float = AWS_LIMITS["express_concurrency"].value
    """The Region's Synchronous Express concurrency available to this service."""
    lambda_concurrency: float = AWS_LIMITS["lambda_concurrency"].value
    """The Region's Lambda concurrency available to this service's function (and the breaker's)."""
    hung_invocation_seconds: float | None = None
    """How long a hanging invocation holds Lambda concurrency: until the function's own timeout,
    which the workflow's timeout does not shorten (default: ``timeout_seconds``, a function whose
    own timeout equals the breaker's)."""
    breaker_function_seconds: float = 0.1
    """An assumption: how long one RecordFailure invocation runs (one per call that failed)."""
    partition_read_units: float = AWS_LIMITS["partition_read_units"].value
    partition_write_units: float = AWS_LIMITS["partition_write_units"].value
    workflow_overhead_seconds: float = 0.05
    """An assumption: Step Functions' own time per execution (state transitions, the GetItem)."""


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

    def of(self, limit: str) -> Ceiling:
        (found,) = [c for c in self.ceilings if c.limit == limit]
        return found

    @property
    def exceeded(self) -> list[Ceiling]:
        """The limits the load's call rate is over, first reached first."""
        over = [c for c in self.ceilings if self.load.calls_per_second > c.calls_per_second]
        return sorted(over, key=lambda c: c.calls_per_second)


READS = "circuit item reads"
WRITES = "circuit item writes"
EXPRESS = "Synchronous Express concurrency"
LAMBDA = "Lambda concurrency"

READS_THROTTLED = (
    "GetCircuitStatus is retried twice (1 s, 2 s, jittered), then ReportStoreFault runs and the "
    "service's storeFaultPolicy decides: `call` (the service is called unchecked) or `fail_fast` "
    "(CircuitStoreUnavailable). RecordFailure's consistent read retries in the SDK, then fails as "
    "a StoreError like a throttled write."
)
WRITES_THROTTLED = (
    "CountFailedAttempt's write fails and is caught: the retry goes on uncounted (the fleet-wide "
    "early open degrades to failureThreshold after all attempts); RecordFailure's read and write "
    "retry in the AWS SDK, then the workflow retries RecordFailure twice on StoreError, and then it "
    "logs RecordFailureFailed and the caller still gets the service's own error."
)
EXPRESS_EXHAUSTED = (
    "StartSyncExecution is refused before any state runs (a throttling error from the Step "
    "Functions API); BreakerClient does not retry it (one attempt) and raises BreakerError naming "
    "the code; another SDK retries it per its own retry mode. Nothing is read or called."
)
LAMBDA_EXHAUSTED = (
    "The service's Task gets Lambda.TooManyRequestsException. ExecuteLambda has no Retry for it: its "
    "Catch treats it as a failed attempt, counted by CountFailedAttempt and retried after the "
    "service's delay; when every attempt fails so, the caller gets Lambda.TooManyRequestsException "
    "and RecordFailure records a service failure, which opens the circuit (failureThreshold, "
    "1 by default) unless the service lists the error in ignoredErrors."
)


def execution_seconds(load: Load) -> float:
    """How long one execution is in flight (Little's law's W for Express concurrency)."""
    if not load.failing:
        return load.latency_seconds + load.workflow_overhead_seconds
    waits = sum(load.retry_delays_seconds[: load.attempts - 1])
    return load.attempts * load.timeout_seconds + waits + load.workflow_overhead_seconds


def lambda_seconds(load: Load) -> float:
    """Lambda concurrency one call holds (Little's law's W for Lambda concurrency): the service's
    invocations, plus RecordFailure's on a call that failed every attempt."""
    if not load.failing:
        return load.latency_seconds
    hung = load.timeout_seconds if load.hung_invocation_seconds is None else load.hung_invocation_seconds
    return load.attempts * hung + load.breaker_function_seconds


def base_share(load: Load) -> float:
    return 1 / load.read_shards if load.base_share is None else load.base_share


def base_read_units_per_call(load: Load) -> float:
    """Read units one call takes from the base item: its share of the GetCircuitStatus reads
    (eventually consistent) and, on a failing call, RecordFailure's strongly consistent read,
    which always goes to the base item."""
    if not load.failing:
        return base_share(load) * read_units(SMALL_ITEM_BYTES, consistent=False)
    gets = load.attempts * base_share(load) * read_units(load.item_bytes, consistent=False)
    return gets + read_units(load.item_bytes, consistent=True)


def write_units_per_call(load: Load) -> float:
    """Write units one call takes from the base item: none on success; on a call that fails every
    attempt, CountFailedAttempt per failed attempt with attempts left and RecordFailure's PutItem,
    each sized by the item (the larger of before and after)."""
    if not load.failing:
        return 0.0
    return load.attempts * write_units(load.item_bytes)


def read_ceiling(load: Load) -> float:
    """Calls/s at which the base item's partition runs out of read units (the shards, which hold
    only what GetCircuitStatus reads and take a smaller share, run out later)."""
    return load.partition_read_units / base_read_units_per_call(load)


def write_ceiling(load: Load) -> float:
    """Calls/s at which the base item runs out of write units. Every writer writes the base item
    only; StreamMirror's copies to the shards happen per change of state, not per call."""
    per_call = write_units_per_call(load)
    return load.partition_write_units / per_call if per_call else float("inf")


def express_ceiling(load: Load) -> float:
    return load.concurrency / execution_seconds(load)


def lambda_ceiling(load: Load) -> float:
    return load.lambda_concurrency / lambda_seconds(load)


def evaluate(load: Load) -> Verdict:
    return Verdict(
        load,
        [
            Ceiling(READS, read_ceiling(load), READS_THROTTLED),
            Ceiling(WRITES, write_ceiling(load), WRITES_THROTTLED),
            Ceiling(EXPRESS, express_ceiling(load), EXPRESS_EXHAUSTED),
            Ceiling(LAMBDA, lambda_ceiling(load), LAMBDA_EXHAUSTED),
        ],
    )


def shards_needed(load: Load, *, headroom: float = 0.8) -> int:
    """The smallest ``read_shards`` whose read ceiling, times ``headroom``, carries a healthy load.
    (A failing service's reads are capped by RecordFailure's read of the base item, which no
    number of shards raises.)"""
    k = 1
    while read_ceiling(replace(load, read_shards=k)) * headroom < load.calls_per_second:
        k += 1
        if k > 10_000:
            raise ValueError("no number of read shards carries this load")
    return k
