"""The sync client: call services through the breaker, and read and operate its circuits.

``call`` uses ``StartSyncExecution``, the way callers of an Express workflow get its result,
against AWS and against the local emulator alike, and never retries it (see
``sfn_breaker.client.connection``). The operators' methods (``status``, ``list_circuits``,
``force_open``, ``close``, ``force_closed``) read and write the CircuitStatus table with
``sfn_breaker.core.store.CircuitStore``: the same items the README documents.
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
from sfn_breaker.core import reading
from sfn_breaker.core.model import REASON, CircuitView
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


def _view(service: str, item: Mapping[str, Any] | None, now: float) -> CircuitReport:
    view = reading.view(service, item, now)
    reason = item.get(REASON) if item else None
    return CircuitReport(
        **{field.name: getattr(view, field.name) for field in fields(view)},
        reason=str(reason) if reason else None,
    )


@dataclass(frozen=True)
class CircuitChange:
    """What an operator's write did to one circuit."""

    service: str
    before: CircuitView
    after: CircuitView

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
        with self._connection.translated():
            item = self._connection.store().get(service)
        if item is None:
            self._require_registered(service)
        return _view(service, item, self.options.clock())

    def list_circuits(self) -> list[CircuitReport]:
        """Every registered service's circuit, and any other circuit the table holds, by name (this
        client forgets every open circuit it remembered)."""
        self.open_circuits.forget()
        with self._connection.translated():
            stored = {str(item["ServiceName"]): item for item in self._connection.store().scan()}
        names = sorted(set(self.registered_services() or ()) | set(stored))
        now = self.options.clock()
        return [_view(name, stored.get(name), now) for name in names]

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
        return CircuitChange(service, before, _view(service, item, now))

    def close(self, service: str) -> CircuitChange:
        """Close ``service``'s circuit now, whether it opened by itself or was forced open or closed
        (and this client forgets that it remembered it open). A circuit the table holds closes even
        when its service is no longer registered; a name with no circuit and no registration is refused
        with ``UnknownService``."""
        self.open_circuits.forget(service)
        with self._connection.translated():
            old = self._connection.store().close(service)
        if old is None:  # nothing was stored: a typo must not read as "already closed"
            self._require_registered(service)
        now = self.options.clock()
        return CircuitChange(service, _view(service, old, now), _view(service, None, now))

    def force_closed(self, service: str, reason: str = "") -> CircuitChange:
        """Always call ``service`` and never open its circuit, until ``close`` (or ``force_open``)."""
        self._require_registered(service)
        self.open_circuits.forget(service)
        now = self.options.clock()
        with self._connection.translated():
            store = self._connection.store()
            before = _view(service, store.get(service), now)
            item = store.force_closed(service, now=now, reason=reason)
        return CircuitChange(service, before, _view(service, item, now))

    def _require_registered(self, service: str) -> None:
        registered = self.registered_services()
        if registered is not None and service not in registered:
            raise InvalidRequestError(
                "UnknownService",
                f"No service named {service} is registered with this circuit breaker. "
                f"Registered services: {', '.join(registered) or 'none'}.",
                service=service,
            )
