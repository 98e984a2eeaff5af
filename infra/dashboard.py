"""The breaker's CloudWatch dashboard: the workflow, one row per service, the breaker's own functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from . import metrics

if TYPE_CHECKING:
    from .monitoring import BreakerMonitoring

#: CloudWatch Logs Insights, on the workflow's log group: the fast fails of the chosen time range
#: (the last hour by default), per service. The docs' "Operating it" (docs/operating.md) shows the same query.
FAST_FAILS_QUERY = "\n".join(
    [
        "fields @timestamp, details.cause",
        '| filter type = "ExecutionFailed" and details.error = "CircuitOpen"',
        "| parse details.cause /for service (?<service>\\S+) /",
        "| stats count(*) as fastFails by service",
        "| sort fastFails desc",
    ]
)
#: The last failed executions with their error and cause (one failed call's reason).
FAILED_CALLS_QUERY = "\n".join(
    [
        "fields @timestamp, execution_arn, details.error, details.cause",
        '| filter type = "ExecutionFailed"',
        "| sort @timestamp desc",
        "| limit 50",
    ]
)

_WIDE, _HALF, _THIRD = 24, 12, 8


def breaker_dashboard(
    scope: Construct, construct_id: str, *, monitoring: BreakerMonitoring, dashboard_name: str | None
) -> cloudwatch.Dashboard:
    m = monitoring.metrics
    machine = monitoring.state_machine
    one_minute = Duration.minutes(1)
    dashboard = cloudwatch.Dashboard(
        scope,
        construct_id,
        dashboard_name=dashboard_name,
        default_interval=Duration.hours(3),
        period_override=cloudwatch.PeriodOverride.INHERIT,
    )
    dashboard.add_widgets(
        cloudwatch.TextWidget(
            markdown=(
                "# Circuit breaker\n"
                "Alarms first; then the workflow (every call is one execution); then one row per service "
                "(its circuit and its calls); then the breaker's own functions. What each metric and "
                "alarm means, and what to do: [Operating it](https://sfn-breaker.github.io/sfn-breaker/operating/)."
            ),
            width=_WIDE,
            height=2,
        )
    )
    if monitoring.alarms:
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=monitoring.alarms, width=_WIDE, height=3)
        )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Executions (calls)",
            left=[
                machine.metric_started(period=one_minute, statistic="Sum", label="started (calls)"),
                machine.metric_succeeded(period=one_minute, statistic="Sum", label="succeeded"),
                machine.metric_failed(period=one_minute, statistic="Sum", label="failed (fast fails included)"),
                machine.metric_timed_out(period=one_minute, statistic="Sum", label="timed out"),
                machine.metric_throttled(period=one_minute, statistic="Sum", label="throttled"),
            ],
            width=_THIRD,
        ),
        cloudwatch.GraphWidget(
            title="Execution time (ms)",
            left=[machine.metric_time(period=one_minute, statistic=p, label=p) for p in ("p50", "p90", "p99")],
            width=_THIRD,
        ),
        cloudwatch.GraphWidget(
            title="How calls ended (all services)",
            left=[m.outcome(outcome) for outcome in (*metrics.outcomes(), *metrics.OUTCOME_OF_ERROR)]
            + [m.outcome(metrics.WORKFLOW_ERRORS)],
            width=_THIRD,
        ),
    )
    for service, function in monitoring.services.items():
        attempts = function.metric_invocations(period=one_minute, statistic="Sum", label="attempts (reached it)")
        errors = function.metric_errors(period=one_minute, statistic="Sum", label="attempts that raised")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{service}: circuit",
                left=[
                    m.circuit(metrics.CIRCUIT_OPENED, service, "opened"),
                    m.circuit(metrics.CIRCUIT_CLOSED, service, "closed"),
                    m.circuit(metrics.PROBE_STARTED, service, "probes"),
                ],
                right=[monitoring.circuit_state(service)],
                width=_THIRD,
            ),
            cloudwatch.GraphWidget(
                title=f"{service}: calls",
                left=[
                    m.service_outcome(metrics.FAILED_FAST, service, "failed fast (not called)"),
                    m.circuit(metrics.FALLBACK, service, "answered by its fallback"),
                    m.circuit(metrics.SERVICE_FAILED, service, "failed (every attempt)"),
                    m.service_outcome(metrics.TIMED_OUT, service, "of which timed out"),
                    attempts,
                    cloudwatch.MathExpression(
                        expression="FILL(attempts, 0) - FILL(errors, 0)",
                        using_metrics={"attempts": attempts, "errors": errors},
                        label="answered attempts (Lambda's view)",
                        period=one_minute,
                    ),
                ],
                width=_THIRD,
            ),
            cloudwatch.GraphWidget(
                title=f"{service}: the service's own latency (ms)",
                left=[function.metric_duration(period=one_minute, statistic=p, label=p) for p in ("p50", "p99")],
                width=_THIRD,
            ),
        )
    dashboard.add_widgets(
        cloudwatch.LogQueryWidget(
            title="Fast fails per service (time range of the dashboard)",
            log_group_names=[monitoring.log_group.log_group_name],
            query_string=FAST_FAILS_QUERY,
            view=cloudwatch.LogQueryVisualizationType.TABLE,
            width=_HALF,
        ),
        cloudwatch.LogQueryWidget(
            title="Last failed calls, with their error and cause",
            log_group_names=[monitoring.log_group.log_group_name],
            query_string=FAILED_CALLS_QUERY,
            view=cloudwatch.LogQueryVisualizationType.TABLE,
            width=_HALF,
        ),
    )
    names = list(monitoring.services)
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="The breaker's table and functions",
            left=[
                m.circuit(name, service, f"{name} {service}")
                for name in (metrics.STORE_FAULT, metrics.RECORD_FAILURE_FAILED, metrics.CORRUPT_ITEM)
                for service in names
            ],
            width=_WIDE,
        )
    )
    return dashboard
