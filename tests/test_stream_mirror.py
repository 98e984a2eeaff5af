"""StreamMirror on a deletion: every way a circuit item disappears counts as CircuitClosed."""

from __future__ import annotations

import json

import pytest

from sfn_breaker.lambdas import stream_mirror


def removal(by_ttl: bool) -> dict[str, object]:
    record: dict[str, object] = {
        "eventName": "REMOVE",
        "dynamodb": {
            "Keys": {"ServiceName": {"S": "payment"}},
            "OldImage": {"ServiceName": {"S": "payment"}, "ExpiryTimeStamp": {"N": "1800000000"}},
        },
    }
    if by_ttl:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


@pytest.mark.parametrize("by_ttl", [False, True])
def test_a_deleted_item_counts_as_a_closed_circuit(by_ttl: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """A TTL deletion too: an expired circuit that no call probed is closed for good, and an alarm
    that fires on opens and clears on closes must not stay in ALARM."""
    assert stream_mirror.handle_record(removal(by_ttl)) == 0

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [(m["Circuit"], "CircuitClosed" in m) for m in metrics] == [("payment", True)]
