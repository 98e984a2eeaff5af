"""A CircuitStatus item as the breaker reads it: its expiry, the ``OpenUntil`` mirror, and the
state a caller finds. Pure functions: no boto3, no clock, no environment. The rules that change a
circuit (what opens it, who probes, what closes it) are in ``transitions``.

Items are plain mappings as boto3's resource layer or ``TypeDeserializer`` returns them
(numbers as ``Decimal`` or ``int``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sfn_breaker.core import model
from sfn_breaker.core.model import CircuitState, CircuitView, CorruptItemError

# A fixed layout that sorts in time order against both clocks the workflow may see:
# AWS's `2026-11-22T17:46:08.044Z` and moto's `2026-11-22T17:46:08.044899+00:00`.
# Whole seconds, always with `.000`, so that the comparison is exact to the millisecond.
_ISO_LAYOUT = "%Y-%m-%dT%H:%M:%S.000Z"
_LARGEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: the layout has four year digits


def iso_timestamp(epoch_seconds: int) -> str:
    """The ``OpenUntil`` mirror of an ``ExpiryTimeStamp``."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime(_ISO_LAYOUT)


def parse_iso_timestamp(raw: object, attribute: str) -> int | None:
    """An ISO-8601 timestamp the breaker wrote (``iso_timestamp``), as epoch seconds; ``None`` when absent."""
    if raw is None:
        return None
    try:
        return math.ceil(datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp())
    except ValueError as exc:
        raise CorruptItemError(f"{attribute} must be an ISO-8601 timestamp, not {raw!r}") from exc


def parse_expiry(raw: object) -> int | None:
    """``ExpiryTimeStamp`` as whole epoch seconds, ``None`` when absent.

    Raises ``CorruptItemError`` for anything that is not a Number of epoch seconds, such as
    a String (DynamoDB's TTL ignores those too) or a value in milliseconds.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise CorruptItemError(f"{model.EXPIRY} must be a Number of epoch seconds, not {type(raw).__name__} {raw!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - Decimal accepts every int and float
        raise CorruptItemError(f"{model.EXPIRY} is not a number: {raw!r}") from exc
    if not value.is_finite() or value < 0 or value > _LARGEST_EPOCH:
        raise CorruptItemError(f"{model.EXPIRY} = {raw} is not epoch seconds (milliseconds by mistake?)")
    return math.ceil(value)


def mirror_for(item: Mapping[str, Any]) -> str | None:
    """The ``OpenUntil`` value that belongs with this item's ``ExpiryTimeStamp``.

    A corrupt expiry has no mirror: the circuit then behaves as closed, so that a mistyped
    operator write can never stop all traffic; the stream handler logs it loudly.
    """
    try:
        expiry = parse_expiry(item.get(model.EXPIRY))
    except CorruptItemError:
        return None
    return None if expiry is None else iso_timestamp(expiry)


def circuit_state(forced: str | None, expiry: int | None, now: float) -> CircuitState:
    """What a caller finds: the one rule for a circuit's state, from its valid ``Forced`` and
    ``ExpiryTimeStamp`` (the workflow's IsCircuitClosed reads an item the same way).

    An expiry in the past means half-open: its time is up, but no success has closed it yet
    (TTL may not have deleted it either), so the next call probes the service. A forced open
    without an expiry is held open until further notice; with one, it ends like any open period.
    """
    if forced == model.FORCED_CLOSED:
        return CircuitState.FORCED_CLOSED
    if forced == model.FORCED_OPEN and (expiry is None or expiry > now):
        return CircuitState.FORCED_OPEN
    if expiry is None:
        return CircuitState.CLOSED
    return CircuitState.OPEN if expiry > now else CircuitState.HALF_OPEN


def view(service: str, item: Mapping[str, Any] | None, now: float) -> CircuitView:
    """What a caller sees for ``service`` at ``now``, read from its item the way the workflow reads it."""
    if not item:
        return CircuitView(service=service, state=CircuitState.CLOSED)
    details: dict[str, Any] = {
        "last_error": _text(item.get(model.LAST_ERROR)),
        "last_cause": _text(item.get(model.LAST_CAUSE)),
        "last_failure_at": _text(item.get(model.LAST_FAILURE_AT)),
    }
    forced = item.get(model.FORCED)
    problem = None
    try:
        expiry = parse_expiry(item.get(model.EXPIRY))
    except CorruptItemError as exc:
        expiry, problem = None, str(exc)
    if forced not in (None, model.FORCED_OPEN, model.FORCED_CLOSED):
        problem = f"{model.FORCED} must be {model.FORCED_OPEN!r} or {model.FORCED_CLOSED!r}, not {forced!r}"
        forced = None
    state = circuit_state(forced, expiry, now)
    open_until = None if state is CircuitState.FORCED_CLOSED else expiry  # forced closed: no open period
    return CircuitView(service=service, state=state, open_until=open_until, problem=problem, **details)


def truncate_cause(cause: str | None) -> str:
    """A cause short enough to keep in the table."""
    text = cause or ""
    if len(text) <= model.MAX_CAUSE_CHARS:
        return text
    return text[: model.MAX_CAUSE_CHARS - 15] + "... (truncated)"


def _text(value: object) -> str | None:
    return None if value is None else str(value)
