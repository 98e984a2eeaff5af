"""The sync client: call services through the breaker, and read and operate its circuits.

``call`` uses ``StartSyncExecution``, the way callers of an Express workflow get its result,
against AWS and against the local emulator alike, and never retries it (see
``sfn_breaker.client.connection``). The operators' methods (``status``, ``list_circuits``,
``force_open``, ``close``, ``force_closed``, ``resync_shards``) read and write the CircuitStatus
table with ``sfn_breaker.core.store.CircuitStore``: the same items the README documents.

A sharded circuit (``readShards``, docs/scale.md) is read from K items. Every operator's write
here writes the base item and then brings the K-1 read shards in step itself
(``CircuitStore.resync_shards``) rather than leaving that to StreamMirror alone, so that it also
repairs a shard left out of step; ``status`` and ``list_circuits`` report read shards that
disagree with their base item (``CircuitReport.stale_shards``). K comes from the workflow's
definition, where the client also finds the registered services.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sfn_breaker.client.base import BaseBreakerClient
from sfn_breaker.client.connection import Connection
from sfn_breaker.client.memory import OpenCircuitMemory
from sfn_breaker.client.results import result_from
from sfn_breaker.core import model, reading
from sfn_breaker.core.model import REASON, CircuitView
from sfn_breaker.core.store import CircuitStore, ShardResync, stale_shards
from sfn_breaker.errors import CircuitOpenError, InvalidRequestError

#: What the workflow answers (``InvalidInput``) to a ``Payload`` that is not a JSON object; the
#: client refuses such a payload with the same words before calling.
PAYLOAD_NOT_AN_OBJECT = (
    '"Payload" must be a JSON object (it is passed to the service as its event); leave it out to send {}.'
)
#: Step Functions' own refusals of an execution's input, before any state runs: the input is not
#: JSON, or it breaks the API's length limit (256 KiB).
REFUSED_INPUT_ERRORS = frozenset({"InvalidExecutionInput", "ValidationException"})


@dataclass(frozen=True, kw_only=True)
class CircuitReport(CircuitView):
    """A circuit as the client reports it: ``CircuitView`` and the operator's note on it."""

    reason: str | None = None
    """What the operator gave with ``--reason`` (``force_open``/``force_closed``); kept on the item."""
    stale_shards: tuple[CircuitView, ...] = ()
    """Read shards that disagree with the circuit's base item, each as a call that reads it sees
    the circuit (its ``service`` is the shard's key, ``payment#3``): ``resync_shards`` repairs them."""


def _view(
    service: str, item: Mapping[str, Any] | None, now: float, stale: Mapping[str, Any] | None = None
) -> CircuitReport:
    view = reading.view(service, item, now)
    reason = item.get(REASON) if item else None
    return CircuitReport(
        **{field.name: getattr(view, field.name) for field in fields(view)},
        reason=str(reason) if reason else None,
        stale_shards=_shard_views(stale or {}, now),
    )


def _shard_views(shards: Mapping[str, Mapping[str, Any] | None], now: float) -> tuple[CircuitView, ...]:
    """Each read shard, by key, as a call that reads it sees the circuit."""
    return tuple(shard_view(key, shard, now) for key, shard in sorted(shards.items()))


def shard_view(key: str, shard: Mapping[str, Any] | None, now: float) -> CircuitView:
    """The circuit as a call that reads the read shard ``key`` sees it. A shard holds what the
    workflow reads (``OpenUntil``, not ``ExpiryTimeStamp``), so its expiry is read from ``OpenUntil``."""
    item = dict(shard or {})
    try:
        until = reading.parse_iso_timestamp(item.get(model.OPEN_UNTIL), model.OPEN_UNTIL)
    except model.CorruptItemError:
        until = None
    if until is not None:
        item[model.EXPIRY] = until
    return reading.view(key, item, now)


@dataclass(frozen=True)
class ShardRepair:
    """What bringing one circuit's read shards in step did (``resync_shards``, and every operator's write)."""

    service: str
    read_shards: int | None
    """The service's ``readShards`` (``None``: the workflow's definition could not be read, and the
    shards the table held were brought in step)."""
    stale: tuple[CircuitView, ...]
    """The read shards that disagreed with the base item, each as calls that read it saw the circuit."""
    unread: tuple[str, ...]
    """Shards beyond ``readShards``, which no call reads, deleted."""

    @property
    def changed(self) -> bool:
        return bool(self.stale or self.unread)

    @classmethod
    def of(cls, resync: ShardResync, read_shards: int | None, now: float) -> ShardRepair:
        return cls(resync.service, read_shards, _shard_views(resync.stale, now), resync.unread)


@dataclass(frozen=True)
class CircuitChange:
    """What an operator's write did to one circuit."""

    service: str
    before: CircuitView
    after: CircuitView
    shards: ShardRepair | None = None
    """What bringing the circuit's read shards in step after the write did (``None``: not sharded)."""

    @property
    def changed(self) -> bool:
        return (self.before.state, self.before.open_until) != (self.after.state, self.after.open_until)


class BreakerClient(BaseBreakerClient):
    """The breaker, seen from a caller and an operator. Safe to share between threads.

    Built with ``BaseBreakerClient``'s keyword arguments; by default it finds the
    ``CircuitBreaker`` stack's outputs, where ``sfn_breaker.client.connection`` says (with no
    endpoint, session or credentials given or configured: the emulator ``breaker local up`` runs).
    ``open_circuits`` is its memory of open circuits (``remember_open_seconds``).
    """

    def _connect(self) -> None:
        self._connection = Connection(self.options)
        self.open_circuits = OpenCircuitMemory(self.remember_open_seconds, self.options.clock)

    # ------------------------------------------------------------------ where the breaker is

    @property
    def state_machine_arn(self) -> str:
        return self._connection.state_machine_arn

    @property
    def table_name(self) -> str:
        return self._connection.table_name

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint in use: the one given, or the running emulator's found by the client
        itself (``None``: boto3's own resolution, AWS or ``AWS_ENDPOINT_URL``)."""
        return self._connection.endpoint_url

    @property
    def session(self) -> boto3.Session:
        """The boto3 session in use (against an emulator, with placeholders for what it does not need)."""
        return self._connection.session

    def registered_services(self) -> list[str] | None:
        """The services the workflow routes, read from its definition (``None`` when it cannot be read)."""
        registered = self._connection.registered_services()
        return None if registered is None else list(registered)

    # ------------------------------------------------------------------ calling a service

    def call(self, service: str, payload: Mapping[str, Any] | None = None) -> Any:
        """Call ``service`` through the breaker and return its response payload.

        :raises CircuitOpenError: the circuit is open (or half-open with its probe in flight);
            the service was not called. After such an answer the client fails the service's
            calls fast itself, without an execution, for a while (``remember_open_seconds``;
            ``CircuitOpenError.from_memory``).
        :raises CircuitStoreUnavailableError: the circuit could not be read and the service's
            store-fault policy is to fail fast; the service was not called.
        :raises ServiceCallError: the service failed (or timed out) on every attempt.
        :raises InvalidRequestError: unknown service, or a payload that is not a JSON object.
        :raises ConfigurationError: the breaker cannot be reached.
        """
        request: dict[str, Any] = {"ServiceName": service}
        if payload is not None:
            if not isinstance(payload, Mapping):  # what the workflow refuses: the service is never called
                raise InvalidRequestError("InvalidInput", PAYLOAD_NOT_AN_OBJECT, service=service)
            request["Payload"] = dict(payload)
        try:
            body = json.dumps(request, ensure_ascii=False)  # sent as UTF-8: 3 bytes a CJK character, not 6
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError("InvalidInput", f"the payload is not JSON: {exc}", service=service) from exc
        self.open_circuits.check(service)
        machine = self.state_machine_arn
        with self._connection.translated():
            try:
                response = self._connection.client("stepfunctions").start_sync_execution(
                    stateMachineArn=machine, input=body
                )
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                if code in REFUSED_INPUT_ERRORS:  # e.g. over 256 KiB: Step Functions refused it, nothing ran
                    raise InvalidRequestError(code, str(error.get("Message") or code), service=service) from exc
                raise
        try:
            return result_from(service, response)
        except CircuitOpenError as exc:
            self.open_circuits.remember(exc)
            raise

    # ------------------------------------------------------------------ reading circuits

    def status(self, service: str) -> CircuitReport:
        """``service``'s circuit as a caller would find it now (this client forgets what it remembered of it)."""
        self.open_circuits.forget(service)
        read_shards = self._connection.read_shards(service)
        with self._connection.translated():
            store = self._connection.store()
            item = store.get(service)
            shards = store.shard_items(service) if read_shards != 1 else {}
        if item is None:
            self._require_registered(service)
        return _view(service, item, self.options.clock(), stale_shards(service, read_shards, item, shards))

    def list_circuits(self) -> list[CircuitReport]:
        """Every registered service's circuit, and any other circuit the table holds, by name (this
        client forgets every open circuit it remembered)."""
        self.open_circuits.forget()
        with self._connection.translated():
            circuits, shards = self._connection.store().scan_with_shards()
        stored = {str(item[model.KEY]): item for item in circuits}
        names = sorted(set(self.registered_services() or ()) | set(stored))
        now = self.options.clock()
        reports = []
        for name in names:
            own = {key: shard for key, shard in shards.items() if key.startswith(f"{name}{model.SHARD_SEPARATOR}")}
            stale = stale_shards(name, self._connection.read_shards(name), stored.get(name), own)
            reports.append(_view(name, stored.get(name), now, stale))
        return reports

    # ------------------------------------------------------------------ operating circuits

    def force_open(
        self,
        service: str,
        *,
        until: datetime | None = None,
        for_seconds: int | None = None,
        reason: str = "",
    ) -> CircuitChange:
        """Hold ``service``'s circuit open: until ``until``, for ``for_seconds``, or (neither) until
        further notice. Calls fail fast with ``CircuitOpen`` meanwhile; ``close`` ends it early."""
        if until is not None and for_seconds is not None:
            raise InvalidRequestError("InvalidInput", "give either until or for_seconds, not both", service=service)
        now = self.options.clock()
        expiry: int | None = None
        if for_seconds is not None:
            if for_seconds <= 0:
                raise InvalidRequestError("InvalidInput", f"for_seconds must be positive, not {for_seconds}")
            expiry = math.ceil(now) + int(for_seconds)
        elif until is not None:
            if until.tzinfo is None:
                raise InvalidRequestError("InvalidInput", f"until must carry a time zone: {until.isoformat()}")
            expiry = math.ceil(until.timestamp())
            if expiry <= now:
                raise InvalidRequestError("InvalidInput", f"until is in the past: {until.isoformat()}")
        self._require_registered(service)
        self.open_circuits.forget(service)
        with self._connection.translated():
            store = self._connection.store()
            before = _view(service, store.get(service), now)
            item = store.force_open(service, until=expiry, now=now, reason=reason)
            shards = self._repair(store, service, now)
        return CircuitChange(service, before, _view(service, item, now), shards)

    def close(self, service: str) -> CircuitChange:
        """Close ``service``'s circuit now, whether it opened by itself or was forced open or closed
        (and this client forgets that it remembered it open). A circuit the table holds closes even
        when its service is no longer registered; a name with no circuit and no registration is refused
        with ``UnknownService``."""
        self.open_circuits.forget(service)
        now = self.options.clock()
        with self._connection.translated():
            store = self._connection.store()
            old = store.close(service)
            if old is None:  # nothing was stored: a typo must not read as "already closed"
                self._require_registered(service)
            shards = self._repair(store, service, now)  # a stale shard goes even when no base item was left
        return CircuitChange(service, _view(service, old, now), _view(service, None, now), shards)

    def force_closed(self, service: str, reason: str = "") -> CircuitChange:
        """Always call ``service`` and never open its circuit, until ``close`` (or ``force_open``)."""
        self._require_registered(service)
        self.open_circuits.forget(service)
        now = self.options.clock()
        with self._connection.translated():
            store = self._connection.store()
            before = _view(service, store.get(service), now)
            item = store.force_closed(service, now=now, reason=reason)
            shards = self._repair(store, service, now)
        return CircuitChange(service, before, _view(service, item, now), shards)

    def resync_shards(self, service: str | None = None) -> list[ShardRepair]:
        """Bring read shards in step with their base items, without changing any circuit: ``service``'s,
        or (``None``) those of every registered service and of any other circuit the table holds
        shards of. Shards beyond a service's ``readShards`` are deleted. What ``breaker resync`` does."""
        now = self.options.clock()
        with self._connection.translated():
            store = self._connection.store()
            if service is None:
                circuits, shards = store.scan_with_shards()
                names = set(self.registered_services() or ()) | {str(item[model.KEY]) for item in circuits}
                names |= {key.split(model.SHARD_SEPARATOR, 1)[0] for key in shards}
            else:
                if store.get(service) is None and not store.shard_items(service):
                    self._require_registered(service)
                names = {service}
            repairs = [self._repair(store, name, now, always=True) for name in sorted(names)]
        return [repair for repair in repairs if repair is not None]

    def _repair(self, store: CircuitStore, service: str, now: float, *, always: bool = False) -> ShardRepair | None:
        """Bring ``service``'s read shards in step after a write of its base item (``None``: not
        sharded and no shard was found, unless ``always``)."""
        read_shards = self._connection.read_shards(service)
        repair = ShardRepair.of(store.resync_shards(service, read_shards), read_shards, now)
        if read_shards == 1 and not repair.changed and not always:
            return None
        return repair

    def _require_registered(self, service: str) -> None:
        registered = self.registered_services()
        if registered is not None and service not in registered:
            raise InvalidRequestError(
                "UnknownService",
                f"No service named {service} is registered with this circuit breaker. "
                f"Registered services: {', '.join(registered) or 'none'}.",
                service=service,
            )
