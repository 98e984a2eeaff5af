"""Where each of the breaker's metrics comes from, and the metric filters that derive the workflow's.

Two sources, no Lambda added anywhere:

- **The breaker's own Lambdas** (RecordFailure, ClaimProbe, StreamMirror) write CloudWatch EMF
  lines through Powertools (``lambdas/observability.py``): namespace ``METRICS_NAMESPACE``,
  dimensions ``Circuit`` (the service) and ``service`` (``LOG_SERVICE_NAME``, added by Powertools).
- **The workflow's execution log** (level ERROR, execution data off by default). A fast fail runs no
  Lambda, so its count is derived from what Step Functions logs anyway: every Fail state an
  execution ends in is one ``FailStateEntered`` event whose ``details.name`` is the state's name,
  and every failed execution is one ``ExecutionFailed`` event with ``details.error`` and
  ``details.cause`` (both logged with execution data off; only ``input`` and ``output`` are left
  out). State names give breaker-wide counts per outcome; the causes the breaker writes name the
  service, which gives per-service counts. A metric filter cannot take a dimension value from
  anything but a field of the event, and no field holds the service's name alone, so per-service
  metrics from the log carry the service in their name (``FailedFast.payment``) and no dimension.

``OUTCOME_OF_STATE`` maps the workflow's end states to what they count as: a new end state is one
line there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from .functions import LOG_SERVICE_NAME, METRICS_NAMESPACE

# Outcomes counted from the workflow's log (metric names).
FAILED_FAST = "FailedFast"
TIMED_OUT = "TimedOut"
SERVICE_ERRORS = "ServiceErrors"
IGNORED_ERRORS = "IgnoredErrors"
STORE_UNAVAILABLE = "StoreUnavailable"
INVALID_REQUESTS = "InvalidRequests"
WORKFLOW_ERRORS = "WorkflowErrors"

# Metrics the breaker's Lambdas emit (EMF), one per circuit.
CIRCUIT_OPENED = "CircuitOpened"
CIRCUIT_CLOSED = "CircuitClosed"
PROBE_STARTED = "ProbeStarted"
SERVICE_FAILED = "ServiceFailed"
STORE_FAULT = "StoreFault"
RECORD_FAILURE_FAILED = "RecordFailureFailed"
CORRUPT_ITEM = "CorruptItem"
FALLBACK = "Fallback"  # RecordFailure, called asynchronously for each answer a fallback gave
HALF_OPEN_TURNED_AWAY = "FastFail"  # ClaimProbe's name: only the callers turned away while half-open

#: The workflow's end states (its Fail states), by the outcome they count as. Every fast fail
#: (open, held open, half-open and busy, slow start, store unavailable with ``fail_fast``) ends in
#: ``FailFast`` once the service's fallback did not answer; the reason is in the error and cause.
OUTCOME_OF_STATE: Mapping[str, str] = {
    "FailFast": FAILED_FAST,
    "FailWithServiceTimeout": TIMED_OUT,
    "FailWithServiceError": SERVICE_ERRORS,
    "FailWithStatesError": SERVICE_ERRORS,
    "ServiceFailedWithoutCause": SERVICE_ERRORS,
    "ServiceResponseTooLarge": SERVICE_ERRORS,  # the service answered more than a state can hold
    "IgnoredServiceError": IGNORED_ERRORS,  # an error the user registered as ignored
    "InvalidServiceName": INVALID_REQUESTS,
    "InvalidPayload": INVALID_REQUESTS,
    "UnknownService": INVALID_REQUESTS,
}

#: Outcomes counted breaker-wide by the error a failed execution ends with (a subset of another).
OUTCOME_OF_ERROR: Mapping[str, str] = {
    STORE_UNAVAILABLE: "CircuitStoreUnavailable",  # fast fails because the table could not be read
}


@dataclass(frozen=True)
class ServiceOutcome:
    """An outcome counted per service from ``ExecutionFailed``: its error, and how its cause names
    the service (``{service}`` stands for the name; ``*`` is the filter pattern's wildcard)."""

    error: str
    cause: str


#: The outcomes counted per service, and where the service's name is in the execution's cause.
#: Fast fails: "Circuit open for service payment until ...", "Circuit held open for service
#: payment by ...", "Circuit half-open for service payment until ...". Timeouts: "Service payment
#: did not answer within ...". Service names have no spaces, so the space after the name keeps
#: ``pay`` from matching ``payment``.
SERVICE_OUTCOMES: Mapping[str, ServiceOutcome] = {
    FAILED_FAST: ServiceOutcome(error="CircuitOpen", cause="*for service {service} *"),
    TIMED_OUT: ServiceOutcome(error="ServiceTimeout", cause="Service {service} did not answer*"),
}

#: CloudWatch Logs allows 100 metric filters per log group.
MAX_METRIC_FILTERS = 100


def quoted(value: str) -> str:
    if '"' in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be written into a filter pattern")
    return f'"{value}"'


def outcome_states(outcome: str) -> list[str]:
    return [state for state, counted in OUTCOME_OF_STATE.items() if counted == outcome]


def outcomes() -> list[str]:
    return list(dict.fromkeys(OUTCOME_OF_STATE.values()))


def state_pattern(states: Iterable[str]) -> str:
    """Matches the event of entering any of ``states`` (``FailStateEntered``, ``PassStateEntered``)."""
    names = " || ".join(f"$.details.name = {quoted(state)}" for state in states)
    return f'{{ $.type = "*StateEntered" && ({names}) }}'


def service_pattern(outcome: str, service: str) -> str:
    """Matches the ``ExecutionFailed`` event of an execution for ``service`` that ended in ``outcome``."""
    spec = SERVICE_OUTCOMES[outcome]
    cause = spec.cause.format(service=service)
    return f'{{ $.type = "ExecutionFailed" && $.details.error = {quoted(spec.error)} && $.details.cause = {quoted(cause)} }}'


#: Failed executions whose error is Step Functions' own (``States.*``): the workflow itself broke
#: (a runtime error, a permission, a limit). A service's ``States.*`` error never ends an
#: execution as such: ``FailWithStatesError`` renames it ``ServiceFailed``.
WORKFLOW_ERROR_PATTERN = '{ $.type = "ExecutionFailed" && $.details.error = "States.*" }'


def service_metric_name(outcome: str, service: str) -> str:
    return f"{outcome}.{service}"


def error_pattern(error: str) -> str:
    """Matches the ``ExecutionFailed`` event of any execution that ended with ``error``."""
    return f'{{ $.type = "ExecutionFailed" && $.details.error = {quoted(error)} }}'


def metric_filter_count(services: Iterable[str]) -> int:
    return len(outcomes()) + len(OUTCOME_OF_ERROR) + 1 + len(SERVICE_OUTCOMES) * len(list(services))


class BreakerMetrics:
    """The breaker's metrics as CDK ``Metric`` objects (counts, summed per period)."""

    def __init__(self, namespace: str = METRICS_NAMESPACE, period: Duration | None = None) -> None:
        self.namespace = namespace
        self.period = period or Duration.minutes(1)

    def _metric(self, name: str, label: str, dimensions: Mapping[str, str] | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map=dict(dimensions) if dimensions else None,
            statistic="Sum",
            period=self.period,
            label=label,
        )

    def circuit(self, name: str, service: str, label: str | None = None) -> cloudwatch.Metric:
        """A metric a breaker Lambda emits for ``service``'s circuit (EMF)."""
        return self._metric(name, label or name, {"Circuit": service, "service": LOG_SERVICE_NAME})

    def outcome(self, outcome: str, label: str | None = None) -> cloudwatch.Metric:
        """A breaker-wide count from the workflow's log."""
        return self._metric(outcome, label or outcome)

    def service_outcome(self, outcome: str, service: str, label: str | None = None) -> cloudwatch.Metric:
        """A per-service count from the workflow's log."""
        return self._metric(service_metric_name(outcome, service), label or outcome)
