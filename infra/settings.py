"""The breaker's settings: defaults, per-service overrides, and CDK context.

Every setting has a default that suits a typical request/response API; each can be set for the
whole breaker (construct prop or CDK context ``circuit-breaker``) and overridden per service
(``ProtectedService(settings=...)`` or context ``circuit-breaker`` -> ``services`` -> name).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sfn_breaker.contract import BREAKER_ERRORS, EXPRESS_MAX_SECONDS, SERVICE_FAILED
from sfn_breaker.core.transitions import Policy

CONTEXT_KEY = "circuit-breaker"

#: Service names become Step Functions state names ("Configure <name>", at most 80 characters).
SERVICE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

STORE_FAULT_POLICIES = ("call", "fail_fast")

#: A static fallback answer is written into the workflow definition: keep it small.
MAX_FALLBACK_RESPONSE_BYTES = 32 * 1024
#: Read shards per circuit: each is one more item StreamMirror writes on a change of state.
MAX_READ_SHARDS = 32
#: Step Functions' limit on an error name.
MAX_ERROR_NAME_CHARS = 256

#: The circuit rules' defaults live with the rules (the Lambdas' ``Policy``); the settings below
#: that are not rules (timeouts, retries, store faults) have theirs here.
_RULES = Policy()


class SettingsError(ValueError):
    """A setting with a value the breaker cannot use; raised at synth time."""


@dataclass(frozen=True, kw_only=True)
class BreakerSettings:
    """How one service is protected. All durations are whole seconds."""

    open_duration_seconds: int = _RULES.open_duration_seconds
    """How long a circuit stays open after it opens."""
    service_timeout_seconds: int = 3
    """How long one attempt may take before it counts as failed (``States.Timeout``)."""
    retry_interval_seconds: int = 1
    """The wait before the first retry."""
    backoff_rate: float = 2.0
    """Each further wait is the previous one times this."""
    max_attempts: int = 3
    """Calls per execution, the first one included (3 = one call and up to two retries)."""
    max_retry_delay_seconds: int = 60
    """No single wait between attempts is longer than this."""
    failure_threshold: int = _RULES.failure_threshold
    """Failed executions within ``failure_window_seconds`` that open the circuit."""
    failure_window_seconds: int = _RULES.failure_window_seconds
    """The rolling window in which failed executions are counted."""
    half_open_probes: int = _RULES.half_open_probes
    """Executions let through to probe the service once an open period is over."""
    open_duration_growth: float = _RULES.open_duration_growth
    """Each consecutive re-open (a failed probe) multiplies the open period by this (1.0: off)."""
    max_open_duration_seconds: int = _RULES.max_open_duration_seconds
    """The longest an open period grows to."""
    store_fault_policy: str = "call"
    """When the CircuitStatus table cannot be read: ``call`` the service anyway, or ``fail_fast``."""
    success_threshold: int = _RULES.success_threshold
    """Successful probes in a row that close a half-open circuit."""
    slow_start_seconds: int = _RULES.slow_start_seconds
    """After a circuit closes, admit 10 % then 50 % of calls over this period (0: off)."""
    failed_attempts_threshold: int = _RULES.failed_attempts_threshold
    """Failed attempts across all callers within ``failure_window_seconds`` that open the circuit
    before the retries go (0: off)."""
    ignored_errors: tuple[str, ...] = ()
    """Error names that are the caller's problem, not the service's: never retried, never counted."""
    fallback_response: Any = None
    """A JSON answer given in place of the service while its circuit is open (``None``: none)."""
    fallback_on_failure: bool = False
    """Also answer with the fallback when the call failed on every attempt."""
    read_shards: int = 1
    """Items the circuit is kept on for reading (1: off): each call reads one of them at random,
    so a hot service's reads spread over several partitions. See docs/scale.md."""

    def __post_init__(self) -> None:
        _require(self.open_duration_seconds >= 1, "open_duration_seconds must be at least 1")
        _require(
            1 <= self.service_timeout_seconds <= EXPRESS_MAX_SECONDS,
            f"service_timeout_seconds must be from 1 to {EXPRESS_MAX_SECONDS}",
        )
        _require(self.retry_interval_seconds >= 0, "retry_interval_seconds must not be negative")
        _require(self.backoff_rate >= 1.0, "backoff_rate must be at least 1.0")
        _require(1 <= self.max_attempts <= 10, "max_attempts must be from 1 to 10")
        _require(self.max_retry_delay_seconds >= 0, "max_retry_delay_seconds must not be negative")
        _require(1 <= self.failure_threshold <= 100, "failure_threshold must be from 1 to 100")
        _require(self.failure_window_seconds >= 1, "failure_window_seconds must be at least 1")
        _require(1 <= self.half_open_probes <= 10, "half_open_probes must be from 1 to 10")
        _require(self.open_duration_growth >= 1.0, "open_duration_growth must be at least 1.0 (1.0: off)")
        _require(
            self.max_open_duration_seconds >= self.open_duration_seconds,
            "max_open_duration_seconds must be at least open_duration_seconds",
        )
        _require(
            self.store_fault_policy in STORE_FAULT_POLICIES,
            f"store_fault_policy must be one of {', '.join(STORE_FAULT_POLICIES)}",
        )
        _require(1 <= self.success_threshold <= 10, "success_threshold must be from 1 to 10")
        _require(1 <= self.read_shards <= MAX_READ_SHARDS, f"read_shards must be from 1 (off) to {MAX_READ_SHARDS}")
        _require(0 <= self.failed_attempts_threshold <= 1000, "failed_attempts_threshold must be from 0 (off) to 1000")
        _require(0 <= self.slow_start_seconds <= 3600, "slow_start_seconds must be from 0 (off) to 3600")
        for name in self.ignored_errors:
            _require(
                isinstance(name, str) and 0 < len(name) <= MAX_ERROR_NAME_CHARS,
                f"ignored_errors must be error names (1 to {MAX_ERROR_NAME_CHARS} characters), not {name!r}",
            )
            _require(
                name not in (*BREAKER_ERRORS, SERVICE_FAILED) and not name.startswith("States."),
                f"ignored_errors cannot include {name!r}: it is one of the breaker's own error names "
                "or a Step Functions error (States.*), which a service never raises itself",
            )
        if self.fallback_response is not None:
            try:
                size = len(json.dumps(self.fallback_response).encode())
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"fallback_response must be JSON: {exc}") from exc
            _require(
                size <= MAX_FALLBACK_RESPONSE_BYTES,
                f"fallback_response is {size} bytes; at most {MAX_FALLBACK_RESPONSE_BYTES} fit in the workflow",
            )
        worst = self.worst_case_seconds()
        _require(
            worst <= EXPRESS_MAX_SECONDS,
            f"max_attempts x service_timeout_seconds plus the retry waits is {worst} s, "
            f"over the {EXPRESS_MAX_SECONDS} s an Express execution may last",
        )

    def retry_delays(self) -> list[int]:
        """The wait before each retry: interval x rate^n, capped, rounded to whole seconds
        (a Wait state counts whole seconds)."""
        return [
            min(round(self.retry_interval_seconds * self.backoff_rate**n), self.max_retry_delay_seconds)
            for n in range(self.max_attempts - 1)
        ]

    def worst_case_seconds(self) -> int:
        """The longest one execution can spend on this service."""
        return self.max_attempts * self.service_timeout_seconds + sum(self.retry_delays())

    def with_overrides(self, overrides: Mapping[str, Any]) -> BreakerSettings:
        """These settings with some replaced; keys may be snake_case or camelCase."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            name = _snake(key)
            if name not in known:
                raise SettingsError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            changes[name] = _coerce(name, value, getattr(self, name))
        return dataclasses.replace(self, **changes)


def settings_from_context(
    context: Any, base: BreakerSettings | None = None
) -> tuple[BreakerSettings, dict[str, dict[str, Any]]]:
    """The breaker-wide settings and the per-service overrides found in CDK context.

    ``context`` is the value of the ``circuit-breaker`` context key: a mapping, or a JSON string
    when given on the command line (``cdk deploy -c 'circuit-breaker={"maxAttempts": 5}'``).
    """
    base = base or BreakerSettings()
    if context is None:
        return base, {}
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"context {CONTEXT_KEY!r} is not valid JSON: {exc}") from exc
    if not isinstance(context, Mapping):
        raise SettingsError(f"context {CONTEXT_KEY!r} must be an object")
    values = dict(context)
    services = values.pop("services", {}) or {}
    if not isinstance(services, Mapping) or not all(isinstance(v, Mapping) for v in services.values()):
        raise SettingsError(f"context {CONTEXT_KEY!r} -> services must map names to objects")
    return base.with_overrides(values), {str(k): dict(v) for k, v in services.items()}


def validate_service_name(name: str) -> str:
    if not SERVICE_NAME_PATTERN.match(name):
        raise SettingsError(f"service name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    return name


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SettingsError(message)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _coerce(name: str, value: Any, current: Any) -> Any:
    if name == "fallback_response":
        return value  # any JSON; checked when the settings are built
    if name == "ignored_errors":
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise SettingsError(f"setting {name} must be a list of error names, not {value!r}")
        return tuple(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise SettingsError(f"setting {name} must be true or false, not {value!r}")
        return value
    if isinstance(current, str):
        if not isinstance(value, str):
            raise SettingsError(f"setting {name} must be a string, not {value!r}")
        return value.lower()
    try:
        if isinstance(current, float):
            return float(value)
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
        if not number.is_integer():
            raise ValueError
        return int(number)
    except (TypeError, ValueError) as exc:
        kind = "a number" if isinstance(current, float) else "a whole number"
        raise SettingsError(f"setting {name} must be {kind}, not {value!r}") from exc
