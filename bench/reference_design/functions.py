"""The reference design's two Lambda functions, ported from its .NET code.

``GetCircuitStatus`` (``GetCircuitStatusLambda/Function.cs``) queries the table on every call for
records of the service whose ``ExpireTimeStamp`` is later than now; any such record means the
circuit is open. ``UpdateCircuitStatus`` (``UpdateCircuitStatusLambda/Function.cs``) runs after an
execution's last attempt failed: it queries the same way and, when no unexpired record exists,
writes one that expires ``open_seconds`` from now (``EXPIRE_SECONDS = 20`` in the sample).

Both keep the .NET ``FunctionData`` shape: the output is ``{"TargetLambda", "CircuitStatus"}``,
whatever else the input held (System.Text.Json drops unknown properties).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

TABLE_NAME = "CircuitBreaker"  # [DynamoDBTable("CircuitBreaker")]
CIRCUIT_STATUS = "OPEN"
PUBLISHED_EXPIRE_SECONDS = 20

logger = logging.getLogger(__name__)
Handler = Callable[[Any, Any], Any]


def _unexpired(client: Any, table: str, service_name: str, now: int) -> list[dict[str, Any]]:
    """``QueryAsync<CircuitBreaker>(serviceName, QueryOperator.GreaterThan, {now}).GetRemainingAsync()``
    with ``ConsistentRead = true``: every page."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "ServiceName = :name AND ExpireTimeStamp > :now",
        "ExpressionAttributeValues": {":name": {"S": service_name}, ":now": {"N": str(now)}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def get_circuit_status(client_factory: Callable[[], Any], table: str = TABLE_NAME) -> Handler:
    """``GetCircuitStatus.FunctionHandler``."""

    def handler(event: Any, context: Any) -> Any:
        service_name = event["TargetLambda"]
        now = int(time.time())  # DateTimeOffset.Now.ToUnixTimeSeconds()
        records = _unexpired(client_factory(), table, service_name, now)
        status = records[0].get("CircuitStatus", {}).get("S", "") if records else ""
        return {"TargetLambda": service_name, "CircuitStatus": status}

    return handler


def update_circuit_status(
    client_factory: Callable[[], Any], open_seconds: int = PUBLISHED_EXPIRE_SECONDS, table: str = TABLE_NAME
) -> Handler:
    """``UpdateCircuitStatus.FunctionHandler``: open the circuit unless an unexpired record exists."""

    def handler(event: Any, context: Any) -> Any:
        service_name = event["TargetLambda"]
        now = int(time.time())
        client = client_factory()
        records = _unexpired(client, table, service_name, now)
        if not records:
            try:
                # DynamoDBContext.SaveAsync: one write of the whole object (key and CircuitStatus).
                client.put_item(
                    TableName=table,
                    Item={
                        "ServiceName": {"S": service_name},
                        "CircuitStatus": {"S": CIRCUIT_STATUS},
                        "ExpireTimeStamp": {"N": str(int(time.time()) + open_seconds)},
                    },
                )
            except Exception as exc:  # the sample logs the message and carries on
                logger.warning("%s", exc)
        return {"TargetLambda": service_name, "CircuitStatus": CIRCUIT_STATUS}

    return handler
