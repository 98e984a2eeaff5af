"""StreamMirror: keeps ``OpenUntil`` in step with ``ExpiryTimeStamp`` and logs every state change.

Runs on the CircuitStatus table's stream, so it sees every write: the breaker's own, an
operator's plain DynamoDB write, and TTL's deletions. The workflow reads only ``OpenUntil``
(it has no numeric clock), so an operator who writes only ``ExpiryTimeStamp`` is honoured as soon
as this function has written the mirror, about a second later. Its own writes come back through
the stream and find nothing to do, so it never loops.

For a service with read shards (``READ_SHARDS``, ``{"payment": 8}``, set by the construct), it
also copies every change of what the workflow reads from the base item to the shards
``payment#1`` to ``payment#7`` (or deletes them), so that every writer (the breaker's own, the CLI,
an operator's console) writes one item and the shards follow within the stream's delay. Records
of the shards themselves are ignored.

It has one more entry point, for deploys: an event that is not a stream batch brings every
sharded service's read shards in step with its base item and deletes every shard no call reads
(``resync``). The construct runs it on deploy as a CloudFormation custom resource
(``RequestType`` in the event, answered on its ``ResponseURL``) whose properties are the
``READ_SHARDS`` setting, so it runs again whenever that setting changes; the emulator's deploy
runs it in-process with ``{"Action": "ResyncReadShards"}``. Without it, raising ``readShards``
while an operator holds a circuit open would leave the new shards absent (read as closed) until
the base item next changed, and a shard left from an earlier, higher setting would be read again.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.types import TypeDeserializer

from sfn_breaker.core import model, reading
from sfn_breaker.core.model import CircuitState, CorruptItemError

from .observability import count, logger
from .table import circuit_store

#: The clock the rules read; tests replace it to move time without sleeping.
clock: Callable[[], float] = time.time

_deserializer = TypeDeserializer()

#: TTL deletions carry this principal in the stream record's userIdentity.
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def _image(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    raw = record.get("dynamodb", {}).get(name)
    if raw is None:
        return None
    return {key: _deserializer.deserialize(value) for key, value in raw.items()}


#: The custom resource's property that holds ``READ_SHARDS``, a JSON object.
READ_SHARDS_PROPERTY = "ReadShards"


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "RequestType" in event:
        return on_deploy(event)
    if event == model.RESYNC_READ_SHARDS_EVENT:
        return resync(read_shards())
    synced = 0
    for record in event.get("Records", []):
        synced += handle_record(record)
    return {"Synced": synced}


def read_shards() -> dict[str, int]:
    """Each sharded service's number of read shards, from the construct."""
    shards: dict[str, int] = json.loads(os.environ.get("READ_SHARDS") or "{}")
    return shards


def resync(shards: Mapping[str, int]) -> dict[str, Any]:
    """Bring every sharded service's read shards in step with its base item, and delete every read
    shard no call reads (of a service with fewer shards now, or none). Returns what it changed."""
    store = circuit_store()
    _, held = store.scan_with_shards()
    services = {name for name, k in shards.items() if k > 1}
    services |= {key.split(model.SHARD_SEPARATOR, 1)[0] for key in held}
    written: list[str] = []
    deleted: list[str] = []
    for service in sorted(services):
        result = store.resync_shards(service, shards.get(service, 1))
        stale = sorted(result.stale)
        put, removed = (stale, []) if model.shard_view(result.base) is not None else ([], stale)
        removed += result.unread
        written += put
        deleted += removed
        if result.changed:
            logger.info(
                "Read shards brought in step on deploy",
                extra={"circuit": service, "written": put, "deleted": removed},
            )
    return {"Services": sorted(services), "Written": sorted(written), "Deleted": sorted(deleted)}


def on_deploy(event: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation custom resource's request: ``resync`` on Create and Update (a changed
    ``READ_SHARDS``), nothing on Delete; the answer goes to the request's ``ResponseURL``, and a
    failure fails the deploy (which rolls back, and runs this again with the old setting)."""
    status, reason, data = "SUCCESS", "", {}
    try:
        if event["RequestType"] in ("Create", "Update"):
            properties = event.get("ResourceProperties", {})
            shards = json.loads(properties.get(READ_SHARDS_PROPERTY) or "{}")
            data = {"Written": len(resync(shards)["Written"])}
    except Exception as exc:  # the deploy must hear of any failure, or it waits an hour for an answer
        logger.exception("Could not bring the read shards in step on deploy")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:900]
    answer = {
        "Status": status,
        "Reason": reason or "read shards in step",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "read-shards-in-step",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }
    body = json.dumps(answer).encode()
    request = urllib.request.Request(  # the pre-signed https URL CloudFormation gave
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return answer


def handle_record(record: dict[str, Any]) -> int:
    keys = _image(record, "Keys") or {}
    service = str(keys.get(model.KEY, "?"))
    if model.is_shard_key(service):
        return 0  # a read shard's own write: a copy, not a change of any circuit
    old, new = _image(record, "OldImage"), _image(record, "NewImage")
    removed = record.get("eventName") == "REMOVE" or new is None
    synced = _fan_out(service, old, None if removed else new)
    return synced + _handle_base(service, old, None if removed else new, record)


def _fan_out(service: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> int:
    """Copy what the workflow reads to the service's read shards, when it changed."""
    shards = read_shards().get(service, 1)
    if shards <= 1:
        return 0
    before, after = model.shard_view(old), model.shard_view(new)
    if before == after:
        return 0
    shard_keys = model.shard_keys(service, shards)[1:]
    circuit_store().write_shards(shard_keys, after)
    logger.info("Read shards brought in step", extra={"circuit": service, "shards": len(shard_keys)})
    return len(shard_keys)


def _handle_base(service: str, old: dict[str, Any] | None, new: dict[str, Any] | None, record: dict[str, Any]) -> int:
    if new is None:
        by_ttl = record.get("userIdentity", {}).get("principalId") == _TTL_PRINCIPAL
        logger.info(
            "Circuit item deleted: circuit closed",
            extra={"circuit": service, "by": "TTL" if by_ttl else "a write"},
        )
        # TTL deletes an expired item that no probe closed (no call came): closed for good now,
        # and counted so that an alarm on opens and closes does not stay in ALARM.
        count("CircuitClosed", service)
        return 0

    _log_state_change(service, old, new)
    try:
        reading.parse_expiry(new.get(model.EXPIRY))
    except CorruptItemError as exc:
        logger.error(
            "Corrupt circuit item: ignoring its expiry, the circuit behaves as closed",
            extra={"circuit": service, "problem": str(exc), "item": _printable(new)},
        )
        count("CorruptItem", service)
    mirror = reading.mirror_for(new)
    if new.get(model.OPEN_UNTIL) == mirror:
        return 0
    written = circuit_store().sync_mirror(service, new)
    logger.info(
        "OpenUntil brought in step with ExpiryTimeStamp",
        extra={"circuit": service, "open_until": written, "expiry": _printable(new).get(model.EXPIRY)},
    )
    return 1


def _log_state_change(service: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    now = clock()
    before = reading.view(service, old, now).state
    after = reading.view(service, new, now)
    if before is after.state:
        return
    until = None if after.open_until is None else reading.iso_timestamp(after.open_until)
    logger.info(
        f"Circuit {before.value} -> {after.state.value}",
        extra={"circuit": service, "from": before.value, "to": after.state.value, "open_until": until},
    )
    if after.state is CircuitState.CLOSED and before is not CircuitState.CLOSED:
        count("CircuitClosed", service)


def _printable(item: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) for key, value in item.items()}
