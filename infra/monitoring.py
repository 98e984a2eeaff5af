"""On call with the breaker: the workflow's metric filters, the alarms and the dashboard.

Nothing here runs on a call's path: the metric filters read the log the workflow writes anyway,
and the alarms and the dashboard read metrics. Where each metric comes from is in ``metrics.py``;
every alarm's threshold and the reason for it are next to it below and in the docs'
"Operating it" (docs/operating.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import metrics
from .dashboard import breaker_dashboard
from .functions import METRICS_NAMESPACE
from .settings import SettingsError

#: CloudWatch alarms on metric math may read at most this many metrics.
MAX_METRICS_PER_ALARM = 10
_GREATER_OR_EQUAL = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm's rule: what breaches, over how long, and what missing data means."""

    threshold: float
    period: Duration
    evaluation_periods: int
    treat_missing_data: cloudwatch.TreatMissingData
    reason: str


#: Every alarm's rule, by the alarm's role. The docs' "Operating it" (docs/operating.md) lists the same.
ALARM_SPECS: Mapping[str, AlarmSpec] = {
    "CircuitOpen": AlarmSpec(
        1,
        Duration.minutes(1),
        1,
        cloudwatch.TreatMissingData.IGNORE,
        "A state, not a rate: the expression is 1 in a minute the circuit opened (more opens than "
        "closes), 0 in a minute it closed, and has no value in a quiet minute, which IGNORE turns into "
        "'stay as you are'. So the alarm fires when the circuit opens and clears when it closes.",
    ),
    "WorkflowErrors": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "Executions that failed with Step Functions' own error (States.*) and not in one of the "
        "workflow's Fail states: the breaker itself is broken (a permission, a limit, a bad path). "
        "Never expected, so one is enough; no data means none happened.",
    ),
    "ExecutionsTimedOut": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "Synth checks that an execution's worst case fits Express's 5 minutes, so a timed-out "
        "execution is a hang or a bug, and its caller got no answer at all. One is enough.",
    ),
    "ExecutionThrottled": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "A throttled state transition delays every call behind it; Express's quotas are high, so "
        "any throttling means a burst the account's quota does not cover.",
    ),
    "LambdaErrors": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "The breaker's functions run only on rare paths, and an error in one means a failure not "
        "recorded (RecordFailure), a probe not decided (ClaimProbe) or an operator's write not "
        "mirrored (StreamMirror, which retries). One is enough.",
    ),
    "StoreFault": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "The table could not be read after its retries: calls went on under the store-fault "
        "policy, unprotected (call) or refused (fail_fast). One is enough.",
    ),
    "RecordFailureFailed": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "A service's failure could not be written after its retries: the circuit may stay closed "
        "in front of a failing service. One is enough.",
    ),
    "CorruptItem": AlarmSpec(
        1,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "Someone wrote an ExpiryTimeStamp that is not epoch seconds: the circuit they meant to open "
        "behaves as closed. One is enough.",
    ),
    "StreamMirrorBehind": AlarmSpec(
        60_000,
        Duration.minutes(5),
        1,
        cloudwatch.TreatMissingData.NOT_BREACHING,
        "An operator's write takes effect when StreamMirror has mirrored it (about a second); a "
        "stream record older than a minute means writes are not being honoured in time.",
    ),
}


class BreakerMonitoring(Construct):
    """Metric filters on the workflow's log, alarms and a dashboard for one breaker.

    Exposes ``metric_filters`` (by metric name), ``alarms`` (every alarm), ``circuit_open_alarms``
    (by service), ``dashboard`` (or ``None``) and ``metrics`` (a ``BreakerMetrics`` to build more).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        services: Mapping[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        log_group: logs.ILogGroup,
        breaker_functions: Mapping[str, lambda_.IFunction],
        stream_mirror: lambda_.IFunction,
        namespace: str = METRICS_NAMESPACE,
        alarms: bool = True,
        dashboard: bool = True,
        dashboard_name: str | None = None,
        alarm_actions: Sequence[cloudwatch.IAlarmAction] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        count = metrics.metric_filter_count(services)
        if count > metrics.MAX_METRIC_FILTERS:
            raise SettingsError(
                f"{len(services)} services need {count} metric filters on the workflow's log group; CloudWatch "
                f"allows {metrics.MAX_METRIC_FILTERS}. Split the services over several breakers, or pass monitoring=False."
            )
        self.services = dict(services)
        self.state_machine = state_machine
        self.log_group = log_group
        self.metrics = metrics.BreakerMetrics(namespace)
        self._actions = list(alarm_actions)

        self.metric_filters: dict[str, logs.MetricFilter] = {}
        for outcome in metrics.outcomes():
            self._filter(outcome, metrics.state_pattern(metrics.outcome_states(outcome)))
        for outcome, error in metrics.OUTCOME_OF_ERROR.items():
            self._filter(outcome, metrics.error_pattern(error))
        self._filter(metrics.WORKFLOW_ERRORS, metrics.WORKFLOW_ERROR_PATTERN)
        for service in self.services:
            for outcome in metrics.SERVICE_OUTCOMES:
                self._filter(metrics.service_metric_name(outcome, service), metrics.service_pattern(outcome, service))

        self.alarms: list[cloudwatch.Alarm] = []
        self.circuit_open_alarms: dict[str, cloudwatch.Alarm] = {}
        if alarms:
            self._add_alarms(breaker_functions, stream_mirror)
        self.dashboard: cloudwatch.Dashboard | None = None
        if dashboard:
            self.dashboard = breaker_dashboard(self, "Dashboard", monitoring=self, dashboard_name=dashboard_name)

    def _filter(self, metric_name: str, pattern: str) -> None:
        self.metric_filters[metric_name] = logs.MetricFilter(
            self,
            f"Filter{metric_name}",
            log_group=self.log_group,
            filter_pattern=logs.FilterPattern.literal(pattern),
            metric_namespace=self.metrics.namespace,
            metric_name=metric_name,
            metric_value="1",
            unit=cloudwatch.Unit.COUNT,
        )

    # The circuit of one service, as a state: 1 when it opened, 0 when it closed, nothing otherwise.
    def circuit_state(self, service: str) -> cloudwatch.MathExpression:
        spec = ALARM_SPECS["CircuitOpen"]
        return cloudwatch.MathExpression(
            expression="IF(FILL(opened, 0) - FILL(closed, 0) > 0, 1, IF(FILL(closed, 0) > 0, 0))",
            using_metrics={
                "opened": self.metrics.circuit(metrics.CIRCUIT_OPENED, service),
                "closed": self.metrics.circuit(metrics.CIRCUIT_CLOSED, service),
            },
            period=spec.period,
            label=f"{service}: circuit open (1) / closed (0)",
        )

    def _add_alarms(self, breaker_functions: Mapping[str, lambda_.IFunction], stream_mirror: lambda_.IFunction) -> None:
        for service in self.services:
            self.circuit_open_alarms[service] = self._alarm(
                f"CircuitOpen-{service}",
                "CircuitOpen",
                self.circuit_state(service),
                f"The circuit of service {service} is OPEN: its calls fail fast with CircuitOpen. Clears when "
                f"it closes. See why: `breaker status {service}`.",
            )
        self._alarm(
            "WorkflowErrors",
            "WorkflowErrors",
            self.metrics.outcome(metrics.WORKFLOW_ERRORS).with_(period=Duration.minutes(5)),
            "Workflow executions failed with a Step Functions error (States.*): the breaker itself is broken.",
        )
        self._alarm(
            "ExecutionsTimedOut",
            "ExecutionsTimedOut",
            self.state_machine.metric_timed_out(period=Duration.minutes(5), statistic="Sum"),
            "Workflow executions timed out: a caller got no answer.",
        )
        self._alarm(
            "ExecutionThrottled",
            "ExecutionThrottled",
            self.state_machine.metric_throttled(period=Duration.minutes(5), statistic="Sum"),
            "Workflow state transitions were throttled: calls were delayed.",
        )
        for name, function in breaker_functions.items():
            self._alarm(
                f"{name}Errors",
                "LambdaErrors",
                function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                f"The breaker's {name} function failed.",
            )
        for metric_name in (metrics.STORE_FAULT, metrics.RECORD_FAILURE_FAILED, metrics.CORRUPT_ITEM):
            self._sum_alarms(metric_name)
        self._alarm(
            "StreamMirrorBehind",
            "StreamMirrorBehind",
            stream_mirror.metric("IteratorAge", period=Duration.minutes(5), statistic="Maximum"),
            "StreamMirror is more than a minute behind the table's stream: operators' writes are late.",
        )

    def _sum_alarms(self, metric_name: str) -> None:
        """One alarm on ``metric_name`` summed over every circuit (in groups of ten services)."""
        names = list(self.services)
        groups = [names[i : i + MAX_METRICS_PER_ALARM] for i in range(0, len(names), MAX_METRICS_PER_ALARM)]
        for index, group in enumerate(groups):
            # The metrics carry the alarm's period themselves: a MathExpression's period overrides
            # theirs, which CDK reports as a MetricsPeriodsOverridden warning at every synth.
            period = ALARM_SPECS[metric_name].period
            using = {
                f"m{i}": self.metrics.circuit(metric_name, service).with_(period=period)
                for i, service in enumerate(group)
            }
            expression = cloudwatch.MathExpression(
                expression=" + ".join(f"FILL({key}, 0)" for key in using),
                using_metrics=using,
                period=period,
                label=f"{metric_name} (all circuits)",
            )
            suffix = "" if len(groups) == 1 else str(index + 1)
            self._alarm(
                f"{metric_name}{suffix}",
                metric_name,
                expression,
                f"{metric_name} for circuits {', '.join(group)}.",
            )

    def _alarm(self, construct_id: str, role: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        spec = ALARM_SPECS[role]
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=spec.threshold,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.evaluation_periods,
            comparison_operator=_GREATER_OR_EQUAL,
            treat_missing_data=spec.treat_missing_data,
            alarm_description=f"{description} Why this threshold: {spec.reason}",
        )
        for action in self._actions:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm
