"""Every DynamoDB call the breaker's Lambdas, CLI and client make, in one place."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from breaker_core import model, rules


class StoreError(RuntimeError):
    """The CircuitStatus table could not be read or written."""


class RecordResult(enum.StrEnum):
    OPENED = "opened"
    ALREADY_OPEN = "already open"
    FORCED = "forced"


@dataclass(frozen=True, kw_only=True)
class FailureRecord:
    result: RecordResult
    open_until: int | None
    replaced_corrupt_expiry: object = None


class CircuitStore:
    """The CircuitStatus table, seen through the operations the breaker needs."""

    def __init__(self, table_name: str, *, dynamodb_resource: Any = None) -> None:
        resource = dynamodb_resource or boto3.resource("dynamodb")
        self.table_name = table_name
        self.table = resource.Table(table_name)

    def get(self, service: str) -> dict[str, Any] | None:
        try:
            response = self.table.get_item(Key={model.KEY: service}, ConsistentRead=True)
        except ClientError as exc:
            raise StoreError(f"could not read circuit {service!r}: {exc}") from exc
        item: dict[str, Any] | None = response.get("Item")
        return item

    def record_failure(
        self,
        service: str,
        *,
        now: float,
        open_duration_seconds: int,
        error: str,
        cause: str,
    ) -> FailureRecord:
        """Open ``service``'s circuit unless it is open already or forced.

        The condition makes the first recorded failure define the expiry: a failure recorded
        while the circuit is open never pushes ``ExpiryTimeStamp`` further out.
        """
        expiry = rules.failure_expiry(now, open_duration_seconds)
        now_iso = rules.iso_timestamp(int(now))
        try:
            response = self.table.update_item(
                Key={model.KEY: service},
                UpdateExpression=(
                    "SET #expiry = :expiry, #open_until = :open_until, #opened_at = :now_iso, "
                    "#last_error = :error, #last_cause = :cause, #last_failure_at = :now_iso "
                    "REMOVE #forced, #reason"
                ),
                # Not while open (the first failure defines the expiry), never over a forced
                # state, but over an expired forced-open and over a corrupt expiry (logged).
                ConditionExpression=(
                    "(attribute_not_exists(#forced) AND (attribute_not_exists(#expiry) "
                    "OR NOT attribute_type(#expiry, :number) OR #expiry <= :now)) "
                    "OR (#forced = :forced_open AND attribute_type(#expiry, :number) AND #expiry <= :now)"
                ),
                ExpressionAttributeNames={
                    "#expiry": model.EXPIRY,
                    "#open_until": model.OPEN_UNTIL,
                    "#opened_at": model.OPENED_AT,
                    "#last_error": model.LAST_ERROR,
                    "#last_cause": model.LAST_CAUSE,
                    "#last_failure_at": model.LAST_FAILURE_AT,
                    "#forced": model.FORCED,
                    "#reason": model.REASON,
                },
                ExpressionAttributeValues={
                    ":expiry": expiry,
                    ":open_until": rules.iso_timestamp(expiry),
                    ":now_iso": now_iso,
                    ":error": error,
                    ":cause": rules.truncate_cause(cause),
                    ":now": int(now),
                    ":number": "N",
                    ":forced_open": model.FORCED_OPEN,
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise StoreError(f"could not record a failure of {service!r}: {exc}") from exc
            old = _old_item(exc)
            if old.get(model.FORCED) in (model.FORCED_OPEN, model.FORCED_CLOSED):
                return FailureRecord(result=RecordResult.FORCED, open_until=None)
            return FailureRecord(
                result=RecordResult.ALREADY_OPEN,
                open_until=rules.parse_expiry(old.get(model.EXPIRY)),
            )
        old_expiry = (response.get("Attributes") or {}).get(model.EXPIRY)
        try:
            rules.parse_expiry(old_expiry)
        except model.CorruptItemError:
            return FailureRecord(result=RecordResult.OPENED, open_until=expiry, replaced_corrupt_expiry=old_expiry)
        return FailureRecord(result=RecordResult.OPENED, open_until=expiry)

    # -- operators' writes: the same items the README documents for a plain DynamoDB client

    def force_open(self, service: str, *, until: int | None, now: float, reason: str = "") -> dict[str, Any]:
        """Hold ``service``'s circuit open until ``until`` (epoch seconds) or, with ``None``,
        until further notice. Replaces whatever the item held."""
        item: dict[str, Any] = {
            model.KEY: service,
            model.FORCED: model.FORCED_OPEN,
            model.OPENED_AT: rules.iso_timestamp(int(now)),
        }
        if until is not None:
            item[model.EXPIRY] = until
            item[model.OPEN_UNTIL] = rules.iso_timestamp(until)
        if reason:
            item[model.REASON] = reason
        self._put(item)
        return item

    def force_closed(self, service: str, *, now: float, reason: str = "") -> dict[str, Any]:
        """Always call ``service`` and never open its circuit, until an operator says otherwise."""
        item: dict[str, Any] = {model.KEY: service, model.FORCED: model.FORCED_CLOSED}
        item[model.OPENED_AT] = rules.iso_timestamp(int(now))
        if reason:
            item[model.REASON] = reason
        self._put(item)
        return item

    def close(self, service: str) -> dict[str, Any] | None:
        """Close ``service``'s circuit now (delete its item, forced or not); returns the old item."""
        try:
            response = self.table.delete_item(Key={model.KEY: service}, ReturnValues="ALL_OLD")
        except ClientError as exc:
            raise StoreError(f"could not close circuit {service!r}: {exc}") from exc
        old: dict[str, Any] | None = response.get("Attributes")
        return old

    def scan(self) -> list[dict[str, Any]]:
        """Every circuit item (one per service that has one), for listings."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        try:
            while True:
                page = self.table.scan(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except ClientError as exc:
            raise StoreError(f"could not list circuits: {exc}") from exc

    def _put(self, item: dict[str, Any]) -> None:
        try:
            self.table.put_item(Item=item)
        except ClientError as exc:
            raise StoreError(f"could not write circuit {item[model.KEY]!r}: {exc}") from exc

    def sync_mirror(self, service: str, item: Mapping[str, Any]) -> str | None:
        """Bring ``OpenUntil`` in step with the ``ExpiryTimeStamp`` of ``item`` (as the stream saw it).

        Returns the mirror written (``None`` when it was removed). The write is conditional on
        ``ExpiryTimeStamp`` being unchanged, so a newer write is never overwritten with an old
        mirror; that newer write brings its own stream record.
        """
        mirror = rules.mirror_for(item)
        names = {"#expiry": model.EXPIRY, "#open_until": model.OPEN_UNTIL, "#key": model.KEY}
        values: dict[str, Any] = {}
        if model.EXPIRY in item:
            condition = "attribute_exists(#key) AND #expiry = :seen"
            values[":seen"] = item[model.EXPIRY]
        else:
            condition = "attribute_exists(#key) AND attribute_not_exists(#expiry)"
        if mirror is None:
            update = "REMOVE #open_until"
        else:
            update = "SET #open_until = :mirror"
            values[":mirror"] = mirror
        kwargs: dict[str, Any] = {
            "Key": {model.KEY: service},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.table.update_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None  # changed again since; its own stream record will follow
            raise StoreError(f"could not update the mirror of {service!r}: {exc}") from exc
        return mirror


def _old_item(exc: ClientError) -> dict[str, Any]:
    """The item as it was when a condition failed, in plain Python values."""
    raw: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in raw.items()}
