"""The CircuitStatus table's item format: one item per service, keyed by ``ServiceName``.

This is the operators' contract (README, "Operating circuits by hand"):

- no item                                   -> closed
- ``ExpiryTimeStamp`` (Number, epoch s) > now -> open until then (TTL deletes the item later)
- ``ExpiryTimeStamp`` <= now                  -> closed again, whether or not TTL has deleted it
- ``Forced = "OPEN"`` without an expiry       -> held open until further notice
- ``Forced = "CLOSED"``                       -> always call the service, never trip

``OpenUntil`` is the breaker's own mirror of ``ExpiryTimeStamp`` as an ISO-8601 string. The
workflow compares it with the clock that Step Functions gives it (an ISO string: JSONPath has no
numeric clock). The breaker writes both together; when someone else writes only
``ExpiryTimeStamp``, the table's stream brings the mirror in step within about a second.

A service with ``readShards`` K > 1 also has K-1 read shards, ``<service>#1`` to ``#K-1``: copies
of the attributes the workflow reads, written from the base item by StreamMirror (on the stream,
and on a deploy that changes the setting) and by the operators' tools after their own write.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

KEY = "ServiceName"
EXPIRY = "ExpiryTimeStamp"
OPEN_UNTIL = "OpenUntil"
FORCED = "Forced"
OPENED_AT = "OpenedAt"
LAST_ERROR = "LastError"
LAST_CAUSE = "LastCause"
LAST_FAILURE_AT = "LastFailureAt"
REASON = "Reason"  # an operator's note on a forced state
FAILURES = "Failures"  # recent failed executions (epoch s), counted towards the threshold
OPENS = "Opens"  # consecutive opens since the last close, for growing open periods
PROBES = "Probes"  # half-open probe claims: execution id -> claim lapses at (epoch s)
VERSION = "Version"  # bumped by every automatic write, for conditional writes
PROBE_SUCCESSES = "ProbeSuccesses"  # consecutive successful probes in this half-open period
# Failed attempts across the fleet (the workflow adds to them before each retry) and since when
# (the workflow's ISO clock): too many within the window open the circuit before the retries go.
FAILED_ATTEMPTS = "FailedAttempts"
FAILED_ATTEMPTS_SINCE = "FailedAttemptsSince"
# Slow start after a close: until ADMIT_10 admit 10 % of calls, then until ADMIT_50 half of them
# (ISO strings like OpenUntil, which the workflow compares with its clock).
ADMIT_10 = "Admit10PercentUntil"
ADMIT_50 = "Admit50PercentUntil"
#: The shares of calls admitted in each half of a slow start, in that order.
SLOW_START_SHARES = (10, 50)

FORCED_OPEN = "OPEN"
FORCED_CLOSED = "CLOSED"

#: Longest cause text kept in the table; a DynamoDB item is limited to 400 KB and a cause
#: is for people, not for storage.
MAX_CAUSE_CHARS = 2000


class CircuitState(enum.StrEnum):
    """What a caller would see right now."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"
    FORCED_OPEN = "forced open"
    FORCED_CLOSED = "forced closed"


@dataclass(frozen=True, kw_only=True)
class CircuitView:
    """A circuit as the breaker reads it from its item (or from the absence of one)."""

    service: str
    state: CircuitState
    open_until: int | None = None
    last_error: str | None = None
    last_cause: str | None = None
    last_failure_at: str | None = None
    problem: str | None = None
    """Set when the item is corrupt: what is wrong with it, for logs and ``breaker status``."""


class CorruptItemError(ValueError):
    """A CircuitStatus item that does not follow the documented format."""


# --------------------------------------------------------------------------- read shards

#: Joins a service's name and a shard's number in a shard item's key (``payment#3``). Service
#: names cannot contain it, so a shard's key never names a service.
SHARD_SEPARATOR = "#"
#: What the workflow's GetCircuitStatus reads (its ProjectionExpression): all a shard holds.
READ_ATTRIBUTES = (OPEN_UNTIL, FORCED, ADMIT_10, ADMIT_50)


#: The custom resource with which a deploy has StreamMirror bring every read shard in step with its
#: base item (docs/scale.md), and the plain event the emulator's deploy sends StreamMirror instead.
#: Here rather than in ``sfn_breaker.contract``: StreamMirror's asset ships ``core``, not ``contract``.
READ_SHARDS_RESOURCE_TYPE = "Custom::ReadShardsInStep"
RESYNC_READ_SHARDS_EVENT = {"Action": "ResyncReadShards"}


def shard_keys(service: str, read_shards: int) -> list[str]:
    """The keys of a circuit's items: the base item (``service``, shard 0, which every writer
    writes), then ``service#1`` to ``service#K-1`` (copies kept for reading)."""
    return [service, *(f"{service}{SHARD_SEPARATOR}{n}" for n in range(1, read_shards))]


def is_shard_key(key: str) -> bool:
    return SHARD_SEPARATOR in key


def shard_view(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a read shard holds for the base ``item``: the attributes the workflow reads, or
    ``None`` (no shard item) when the base has none of them, which the workflow reads as closed
    exactly as it reads the base item then."""
    if item is None:
        return None
    view = {name: item[name] for name in READ_ATTRIBUTES if name in item}
    return view or None
