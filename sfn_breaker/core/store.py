"""Every DynamoDB call the breaker's Lambdas, CLI and client make, in one place."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import boto3
from botocore.exceptions import ClientError

from sfn_breaker.core import model, reading, transitions
from sfn_breaker.core.transitions import Circuit


class StoreError(RuntimeError):
    """The CircuitStatus table could not be read or written."""


T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Transition(Generic[T]):
    """What a conditional update did: the decision, and the circuit before and after."""

    outcome: T
    before: Circuit
    after: Circuit | None
    raw: dict[str, Any] | None
    """The item as it was read (``None``: there was none)."""


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

    def transition(
        self,
        service: str,
        decide: Callable[[Circuit], tuple[Circuit | None, T]],
        *,
        annotate: Callable[[Circuit, T], Mapping[str, Any]] | None = None,
        attempts: int = 6,
    ) -> Transition[T]:
        """Read ``service``'s circuit, let ``decide`` choose the next one, and write it only if
        the item has not changed since it was read; on a conflict, read and decide again.
        A next circuit with nothing in it (``Circuit()``) deletes the item.

        Attributes the breaker does not own (an operator's ``Reason``, anything else) are kept.
        ``annotate`` adds attributes for people (last error, when it opened) to a write.
        """
        for attempt in range(attempts):
            raw = self.get(service)
            before = Circuit.from_item(raw)
            after, outcome = decide(before)
            if after is None:
                return Transition(outcome=outcome, before=before, after=None, raw=raw)
            condition, names, values = _unchanged_since(raw)
            kwargs: dict[str, Any] = {"ConditionExpression": condition, "ExpressionAttributeNames": names}
            if values:
                kwargs["ExpressionAttributeValues"] = values
            if after != Circuit():
                item: dict[str, Any] = {**(raw or {}), model.KEY: service}
                for name, value in transitions.changes(before, after).items():
                    if value is None:
                        item.pop(name, None)
                    else:
                        item[name] = value
                if annotate is not None:
                    item.update(annotate(after, outcome))
                write, kwargs["Item"] = self.table.put_item, item
            else:  # closed with nothing to keep: no item, as after the workflow's own close
                write, kwargs["Key"] = self.table.delete_item, {model.KEY: service}
            try:
                write(**kwargs)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise StoreError(f"could not write circuit {service!r}: {exc}") from exc
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # another writer won; decide again
                continue
            return Transition(outcome=outcome, before=before, after=after, raw=raw)
        raise StoreError(f"circuit {service!r} kept changing under {attempts} attempts to update it")

    # -- operators' writes: the same items the README documents for a plain DynamoDB client

    def force_open(self, service: str, *, until: int | None, now: float, reason: str = "") -> dict[str, Any]:
        """Hold ``service``'s circuit open until ``until`` (epoch seconds) or, with ``None``,
        until further notice. Replaces whatever the item held."""
        item: dict[str, Any] = {
            model.KEY: service,
            model.FORCED: model.FORCED_OPEN,
            model.OPENED_AT: reading.iso_timestamp(int(now)),
        }
        if until is not None:
            item[model.EXPIRY] = until
            item[model.OPEN_UNTIL] = reading.iso_timestamp(until)
        if reason:
            item[model.REASON] = reason
        self._put(item)
        return item

    def force_closed(self, service: str, *, now: float, reason: str = "") -> dict[str, Any]:
        """Always call ``service`` and never open its circuit, until an operator says otherwise."""
        item: dict[str, Any] = {model.KEY: service, model.FORCED: model.FORCED_CLOSED}
        item[model.OPENED_AT] = reading.iso_timestamp(int(now))
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
        """Every circuit item (one per service that has one, read shards left out), for listings."""
        circuits, _ = self.scan_with_shards()
        return circuits

    def scan_with_shards(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every circuit item, and apart from them every read shard by key (``payment#3``)."""
        return self._scan({})

    def shard_items(self, service: str) -> dict[str, dict[str, Any]]:
        """The read shards the table holds for ``service``, whether the workflow reads them or not."""
        prefix = f"{service}{model.SHARD_SEPARATOR}"
        _, shards = self._scan(
            {
                "FilterExpression": "begins_with(#key, :prefix)",
                "ExpressionAttributeNames": {"#key": model.KEY},
                "ExpressionAttributeValues": {":prefix": prefix},
            }
        )
        return {key: item for key, item in shards.items() if key.startswith(prefix)}

    def _scan(self, filters: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        circuits: list[dict[str, Any]] = []
        shards: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"ConsistentRead": True, **filters}
        try:
            while True:
                page = self.table.scan(**kwargs)
                for item in page.get("Items", []):
                    key = str(item.get(model.KEY, ""))
                    # A read shard is a copy of its service's circuit, not a circuit.
                    if model.is_shard_key(key):
                        shards[key] = item
                    else:
                        circuits.append(item)
                if "LastEvaluatedKey" not in page:
                    return circuits, shards
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
        mirror = reading.mirror_for(item)
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

    def write_shards(self, keys: list[str], view: Mapping[str, Any] | None) -> None:
        """Make every read shard in ``keys`` hold ``view`` (``None``: no item). Unconditional:
        StreamMirror writes shards in the order of the base item's stream records, and
        ``resync_shards`` checks the base item again after writing."""
        try:
            for key in keys:
                if view is None:
                    self.table.delete_item(Key={model.KEY: key})
                else:
                    self.table.put_item(Item={**view, model.KEY: key})
        except ClientError as exc:
            raise StoreError(f"could not write the read shards {keys}: {exc}") from exc

    def resync_shards(self, service: str, read_shards: int | None, *, attempts: int = 5) -> ShardResync:
        """Bring ``service``'s read shards in step with its base item, whatever they hold now.

        The workflow reads shards 1 to ``read_shards`` - 1: each is written with the base item's
        ``shard_view`` (or deleted when it has none), and every other shard of the service the table
        holds (left from a higher ``readShards``) is deleted. With ``read_shards`` ``None`` (the
        setting could not be read) the shards the table holds are brought in step. Only the shards
        that disagree are written. The base item is read again afterwards: if it changed meanwhile
        (StreamMirror may have written the newer view before this wrote the older), it starts over.
        """
        for _ in range(attempts):
            existing = self.shard_items(service)
            base = self.get(service)
            view = model.shard_view(base)
            read = read_shard_keys(service, read_shards, existing)
            stale = stale_shards(service, read_shards, base, existing)
            unread = sorted(key for key in existing if key not in read)
            self.write_shards(list(stale), view)
            self.write_shards(unread, None)
            if model.shard_view(self.get(service)) == view:
                return ShardResync(service=service, base=base, read=tuple(read), stale=stale, unread=tuple(unread))
        raise StoreError(
            f"circuit {service!r} kept changing under {attempts} attempts to bring its read shards in step"
        )


@dataclass(frozen=True, kw_only=True)
class ShardResync:
    """What ``CircuitStore.resync_shards`` found and did."""

    service: str
    base: dict[str, Any] | None
    """The base item the shards now follow (``None``: there is none, the circuit is closed)."""
    read: tuple[str, ...]
    """The shards the workflow reads (``payment#1`` ...), all now in step."""
    stale: dict[str, dict[str, Any] | None]
    """The read shards that disagreed with the base item, and what each held (``None``: nothing)."""
    unread: tuple[str, ...]
    """Shards no call reads (beyond ``readShards``), deleted."""

    @property
    def changed(self) -> bool:
        return bool(self.stale or self.unread)


def stale_shards(
    service: str, read_shards: int | None, base: Mapping[str, Any] | None, shards: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any] | None]:
    """The read shards of ``service`` (of those in ``shards``) that disagree with its base item,
    and what each holds; with ``read_shards`` ``None``, every shard in ``shards`` counts as read."""
    view = model.shard_view(dict(base) if base is not None else None)
    held = {key: dict(shards[key]) if key in shards else None for key in read_shard_keys(service, read_shards, shards)}
    return {key: item for key, item in held.items() if model.shard_view(item) != view}


def read_shard_keys(service: str, read_shards: int | None, held: Mapping[str, Any]) -> list[str]:
    """The keys of the read shards calls read (``payment#1`` to ``#K-1``); with ``read_shards``
    ``None`` (the setting could not be read), those the table holds (``held``)."""
    return model.shard_keys(service, read_shards)[1:] if read_shards is not None else sorted(held)


def _unchanged_since(raw: Mapping[str, Any] | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A condition that holds only while the item is as ``raw`` (``None``: absent) was read.

    The breaker bumps ``Version`` on every write; an operator's plain write may not, so the
    attributes that decide the circuit's state are compared too.
    """
    names = {"#key": model.KEY}
    if raw is None:
        return "attribute_not_exists(#key)", names, {}
    parts = ["attribute_exists(#key)"]
    values: dict[str, Any] = {}
    for index, attribute in enumerate((model.VERSION, model.EXPIRY, model.FORCED)):
        names[f"#a{index}"] = attribute
        if attribute in raw:
            parts.append(f"#a{index} = :v{index}")
            values[f":v{index}"] = raw[attribute]
        else:
            parts.append(f"attribute_not_exists(#a{index})")
    return " AND ".join(parts), names, values
