"""DynamoDB throttling on chosen items of the emulator, and a burst of calls run through it.

``ThrottledItems`` patches moto's DynamoDB API handler (``GetItem``, ``UpdateItem``, and the other
writes for counting; the API, not the backend, whose writes read the item internally) so that requests on chosen keys fail with
``ProvisionedThroughputExceededException``, as AWS answers when one partition key is over its
partition's limit. Every path reaches the same backend: the workflow's own ``dynamodb:getItem`` /
``updateItem`` tasks (moto's interpreter calls them with retries off, as Step Functions' service
integrations do) and the handlers' boto3 calls (which retry throttling as any AWS SDK does).

A request is throttled either with a fixed probability (``read_rate`` / ``write_rate``, from a
seeded generator) or by a token bucket per key (``reads_per_second``): the emulator's stand-in
for a partition's limit.
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

    def _count(self, operation: str, key: str | None) -> tuple[int, int]:
        with self._lock:
            keys = [key] if key is not None else sorted(self.keys)
            return sum(self.served[operation, k] for k in keys), sum(self.throttled[operation, k] for k in keys)

    def _admit(self, operation: str, key: str) -> None:
        with self._lock:
            if operation == "get_item":
                if self.reads_per_second is not None:
                    bucket = self._buckets.setdefault(
                        key, TokenBucket(self.reads_per_second, max(1.0, self.reads_per_second), self.clock)
                    )
                    refused = not bucket.take()
                else:
                    refused = self._random.random() < self.read_rate
            elif operation == "update_item":
                refused = self._random.random() < self.write_rate
            else:
                refused = False
            (self.throttled if refused else self.served)[operation, key] += 1
        if refused:
            raise Throttled(operation, key)

    @contextmanager
    def installed(self) -> Iterator[ThrottledItems]:
        originals = {name: getattr(DynamoHandler, name) for name in ("get_item", *WRITES)}

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
