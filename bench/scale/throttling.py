"""DynamoDB throttling on chosen items of the emulator, and a burst of calls run through it.

``ThrottledItems`` patches moto's DynamoDB API handler for every single-item operation the breaker
makes (``GetItem``, ``PutItem``, ``UpdateItem``, ``DeleteItem``; the API, not the backend, whose
writes read the item internally) so that requests on chosen keys fail with
``ProvisionedThroughputExceededException``, as AWS answers when one partition key is over its
partition's limit. Every reader and writer reaches the same handler: the workflow's own
``getItem`` (GetCircuitStatus), ``updateItem`` (CountFailedAttempt) and ``deleteItem``
(CloseCircuit) tasks, which moto's interpreter calls with retries off, as Step Functions' service
integrations do; and the handlers' boto3 calls (RecordFailure's and ClaimProbe's consistent read and
conditional PutItem or DeleteItem, StreamMirror's mirror update and shard writes, the CLI's and the
clients' writes), which retry throttling as any AWS SDK does. The breaker makes no batch or
transactional request on a circuit item (``Scan`` lists circuits and is never throttled here).

A request is throttled either with a fixed probability (``read_rate`` for GetItem, ``write_rate``
for the writes, or a rate per operation in ``rates``; from a seeded generator), by a count
(``refuse_first``: the first N requests of an operation on each key, then none), or for reads by a
token bucket per key (``reads_per_second``): the emulator's stand-in for a partition's limit.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.responses import DynamoHandler

KEY_ATTRIBUTE = "ServiceName"
WRITES = ("put_item", "update_item", "delete_item")
OPERATIONS = ("get_item", *WRITES)


class Throttled(DynamodbException):
    """What DynamoDB answers when a partition key is over its partition's throughput."""

    def __init__(self, operation: str, key: str) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException",
            f"Throughput exceeds the current capacity for one or more partition keys ({operation} on {key!r}; "
            "throttling reason TableReadKeyRangeThroughputExceeded or TableWriteKeyRangeThroughputExceeded)",
        )


@dataclass
class TokenBucket:
    """``rate`` requests a second, at most ``burst`` at once; time from ``clock``."""

    rate: float
    burst: float
    clock: Any = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.stamp = self.clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class ThrottledItems:
    """Throttle requests on the items whose key is in ``keys`` (all others pass untouched)."""

    keys: frozenset[str]
    read_rate: float = 0.0
    write_rate: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    """A refusal rate per operation (``put_item``: 0.5), over ``read_rate`` / ``write_rate``."""
    refuse_first: dict[str, int] = field(default_factory=dict)
    """Refuse the first N requests of an operation on each key (``put_item``: 3), then serve them."""
    reads_per_second: float | None = None
    """A token bucket per key for reads (burst: one second's worth), instead of ``read_rate``."""
    seed: int = 21
    clock: Any = time.monotonic
    """The token buckets' clock (a test freezes it: each key then serves exactly its burst)."""
    served: Counter[tuple[str, str]] = field(default_factory=Counter)
    throttled: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def reads(self, key: str | None = None) -> tuple[int, int]:
        """(served, throttled) GetItem requests, on ``key`` or on every throttled key."""
        return self._count("get_item", key)

    def writes(self, key: str | None = None) -> tuple[int, int]:
        """(served, throttled) writes of any kind."""
        pairs = [self._count(op, key) for op in WRITES]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def requests(self, operation: str, key: str | None = None) -> tuple[int, int]:
        """(served, throttled) requests of one operation (``put_item``, ...)."""
        return self._count(operation, key)

    def _count(self, operation: str, key: str | None) -> tuple[int, int]:
        with self._lock:
            keys = [key] if key is not None else sorted(self.keys)
            return sum(self.served[operation, k] for k in keys), sum(self.throttled[operation, k] for k in keys)

    def _admit(self, operation: str, key: str) -> None:
        with self._lock:
            seen = self.served[operation, key] + self.throttled[operation, key]
            if seen < self.refuse_first.get(operation, 0):
                refused = True
            elif operation == "get_item" and self.reads_per_second is not None:
                bucket = self._buckets.setdefault(
                    key, TokenBucket(self.reads_per_second, max(1.0, self.reads_per_second), self.clock)
                )
                refused = not bucket.take()
            else:
                default = self.read_rate if operation == "get_item" else self.write_rate
                refused = self._random.random() < self.rates.get(operation, default)
            (self.throttled if refused else self.served)[operation, key] += 1
        if refused:
            raise Throttled(operation, key)

    @contextmanager
    def installed(self) -> Iterator[ThrottledItems]:
        unknown = sorted({*self.rates, *self.refuse_first} - set(OPERATIONS))
        if unknown:
            raise ValueError(f"ThrottledItems throttles {', '.join(OPERATIONS)}, not {', '.join(unknown)}")
        originals = {name: getattr(DynamoHandler, name) for name in OPERATIONS}

        def wrap(name: str) -> Any:
            original = originals[name]

            def patched(handler: Any) -> Any:
                key = _service_name(name, handler.body)
                if key in self.keys:
                    self._admit(name, key)
                return original(handler)

            return patched

        for name in originals:
            setattr(DynamoHandler, name, wrap(name))
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(DynamoHandler, name, original)


def _service_name(operation: str, body: Any) -> str | None:
    """The ``ServiceName`` of the item an API request is about (``None`` if it is not one)."""
    item = body.get("Item" if operation == "put_item" else "Key") if isinstance(body, dict) else None
    value = item.get(KEY_ATTRIBUTE) if isinstance(item, dict) else None
    found = value.get("S") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None
