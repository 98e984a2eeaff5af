"""A small evaluator for the part of CloudWatch Logs' JSON filter-pattern syntax the breaker uses,
and the log events Step Functions writes for an execution, built from its history.

Filter patterns (AWS, "Filter pattern syntax", JSON log events): ``{ SELECTOR = VALUE }`` and
``!=``, joined with ``&&`` and ``||`` (``&&`` binds tighter) and grouped with parentheses. The
selector must reach a string or number: a missing field, an object or an array matches nothing.
A ``*`` at the start or the end of a value is a wildcard (``*Event``, ``Event*``, ``*Event*``);
one inside a value is the character itself (AWS: ``Ev*ent`` only matches ``Ev*ent``).

Log events (AWS, "Using CloudWatch Logs to log execution history"): one JSON object per history
event with ``id``, ``type``, ``details`` (the event's ``...EventDetails``), ``previous_event_id``,
``event_timestamp``, ``execution_arn`` and ``redrive_count``; with execution data off,
``details`` loses ``input``, ``inputDetails``, ``output`` and ``outputDetails``; at level ERROR
only the event types of AWS's log-level table are written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

ERROR_LEVEL_EVENT_TYPES = frozenset(
    {
        "ExecutionAborted",
        "ExecutionFailed",
        "ExecutionTimedOut",
        "FailStateEntered",
        "LambdaFunctionFailed",
        "LambdaFunctionScheduleFailed",
        "LambdaFunctionStartFailed",
        "LambdaFunctionTimedOut",
        "MapIterationAborted",
        "MapIterationFailed",
        "MapStateAborted",
        "MapStateFailed",
        "ParallelStateAborted",
        "ParallelStateFailed",
        "TaskFailed",
        "TaskStartFailed",
        "TaskStateAborted",
        "TaskSubmitFailed",
        "TaskTimedOut",
        "WaitStateAborted",
    }
)
_EXECUTION_DATA = ("input", "inputDetails", "output", "outputDetails")


def log_events(
    history: Iterable[dict[str, Any]], execution_arn: str, *, level: str = "ERROR", include_execution_data: bool = False
) -> list[str]:
    """The log lines (JSON text) Step Functions writes for an execution with this history."""
    lines = []
    for event in history:
        if level == "ERROR" and event["type"] not in ERROR_LEVEL_EVENT_TYPES:
            continue
        details_key = next((key for key in event if key.endswith("EventDetails")), None)
        details = dict(event[details_key]) if details_key else {}
        if not include_execution_data:
            for key in _EXECUTION_DATA:
                details.pop(key, None)
        timestamp = event["timestamp"]
        lines.append(
            json.dumps(
                {
                    "id": str(event["id"]),
                    "type": event["type"],
                    "details": details,
                    "previous_event_id": str(event.get("previousEventId", 0)),
                    "event_timestamp": str(int(timestamp.timestamp() * 1000)),
                    "execution_arn": execution_arn,
                    "redrive_count": "0",
                }
            )
        )
    return lines


_TOKEN = re.compile(r'\s*(\(|\)|&&|\|\||!=|=|"(?:[^"\\]|\\.)*"|\$[A-Za-z0-9_.\[\]-]*|[^\s()&|=!"]+)')


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A function that tells whether a log line (JSON text) matches the JSON filter ``pattern``."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not a JSON filter pattern: {pattern!r}")
    tokens = _tokens(text[1:-1])
    predicate, rest = _or(tokens)
    if rest:
        raise ValueError(f"unexpected {rest[0]!r} in {pattern!r}")

    def matches(line: str) -> bool:
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return predicate(event)

    return matches


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        found = _TOKEN.match(text, position)
        if not found:
            raise ValueError(f"cannot read {text[position:]!r}")
        tokens.append(found.group(1))
        position = found.end()
    return tokens


Predicate = Callable[[Any], bool]


def _or(tokens: list[str]) -> tuple[Predicate, list[str]]:
    left, tokens = _and(tokens)
    while tokens and tokens[0] == "||":
        right, tokens = _and(tokens[1:])
        left = (lambda a, b: lambda event: a(event) or b(event))(left, right)
    return left, tokens


def _and(tokens: list[str]) -> tuple[Predicate, list[str]]:
    left, tokens = _primary(tokens)
    while tokens and tokens[0] == "&&":
        right, tokens = _primary(tokens[1:])
        left = (lambda a, b: lambda event: a(event) and b(event))(left, right)
    return left, tokens


def _primary(tokens: list[str]) -> tuple[Predicate, list[str]]:
    if tokens[0] == "(":
        inner, rest = _or(tokens[1:])
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced parentheses")
        return inner, rest[1:]
    selector, operator, value = tokens[0], tokens[1], tokens[2]
    if not selector.startswith("$") or operator not in ("=", "!="):
        raise ValueError(f"expected SELECTOR = VALUE, got {tokens[:3]}")
    path = _path(selector)
    literal = json.loads(value) if value.startswith('"') else value
    equal = _value_test(literal)

    def compare(event: Any) -> bool:
        found = _select(event, path)
        if isinstance(found, bool) or not isinstance(found, str | int | float):
            return False
        return equal(str(found)) if operator == "=" else not equal(str(found))

    return compare, tokens[3:]


def _path(selector: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]", selector[1:]):
        parts.append(int(index) if index else name)
    return parts


def _select(event: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(event, list) or part >= len(event):
                return None
        elif not isinstance(event, dict) or part not in event:
            return None
        event = event[part]
    return event


def _value_test(value: str) -> Callable[[str], bool]:
    starts, ends = value.startswith("*"), value.endswith("*") and len(value) > 1
    core = value[1 if starts else 0 : len(value) - 1 if ends else len(value)]
    if starts and ends:
        return lambda found: core in found
    if starts:
        return lambda found: found.endswith(core)
    if ends:
        return lambda found: found.startswith(core)
    return lambda found: found == core
