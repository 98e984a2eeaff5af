"""On call with the breaker: metric sources, alarms, dashboard, and the table's safety.

Template tests build the construct in a bare ``Stack`` (two services, no context) and read the
demo's synthesized template. The emulator tests run real executions on moto, turn their
histories into the log events Step Functions writes (level ERROR, no execution data), and
evaluate every metric filter of the synthesized template on them (``tests/filter_pattern.py``);
the circuit-open alarm is checked against the EMF lines the real handlers print.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template

from sfn_breaker.cdk import CircuitBreaker, SettingsError
from sfn_breaker.cdk import metrics as breaker_metrics
from sfn_breaker.cdk.monitoring import ALARM_SPECS
from sfn_breaker.local.assembly import Assembly
from tests.filter_pattern import compile_pattern, log_events
from tests.harness import REPOSITORY, Breaker, ScriptedService, deployed_breaker
from tests.test_construct import bare_breaker

SERVICES = ("inventory", "orders")
EMF_DIMENSIONS = [{"Name": "Circuit", "Value": "orders"}, {"Name": "service", "Value": "circuit-breaker"}]


def _template(**props: Any) -> Template:
    stack, _ = bare_breaker(**props)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def bare() -> Template:
    return _template()


def _filters(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric name -> the metric filter's properties."""
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Logs::MetricFilter":
            props = resource["Properties"]
            found[props["MetricTransformations"][0]["MetricName"]] = props
    return found


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def _alarm(template: dict[str, Any], logical_prefix: str) -> dict[str, Any]:
    (found,) = [p for k, p in _alarms(template).items() if k.startswith(logical_prefix)]
    return found


# --- Metric sources ----------------------------------------------------------------------------


def test_each_outcome_is_counted_by_a_filter_on_the_workflows_own_log_group(bare: Template) -> None:
    template = bare.to_json()
    filters = _filters(template)
    expected = {*breaker_metrics.outcomes(), "StoreUnavailable", "WorkflowErrors"}
    expected |= {f"{outcome}.{service}" for outcome in ("FailedFast", "TimedOut") for service in SERVICES}
    assert set(filters) == expected
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    log_group_id = machine["Properties"]["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"][
        "LogGroupArn"
    ]["Fn::GetAtt"][0]
    for name, props in filters.items():
        assert props["LogGroupName"] == {"Ref": log_group_id}, name
        assert props["MetricTransformations"] == [
            {"MetricName": name, "MetricNamespace": "CircuitBreaker", "MetricValue": "1", "Unit": "Count"}
        ]


def _state_entered(name: str, kind: str = "Fail") -> str:
    return json.dumps({"id": "5", "type": f"{kind}StateEntered", "details": {"name": name}, "execution_arn": "x"})


def _failed(error: str, cause: str) -> str:
    return json.dumps({"id": "6", "type": "ExecutionFailed", "details": {"error": error, "cause": cause}})


@pytest.mark.parametrize(("state", "outcome"), sorted(breaker_metrics.OUTCOME_OF_STATE.items()))
def test_each_end_state_is_counted_as_its_outcome_and_nothing_else(bare: Template, state: str, outcome: str) -> None:
    filters = _filters(bare.to_json())
    line = _state_entered(state)

    matched = {name for name, props in filters.items() if compile_pattern(props["FilterPattern"])(line)}

    assert matched == {outcome}


def test_a_fast_fail_on_an_unreadable_table_is_counted_as_such_and_as_a_fast_fail(bare: Template) -> None:
    filters = _filters(bare.to_json())
    lines = [_state_entered("FailFast"), _failed("CircuitStoreUnavailable", "The circuit of service orders ...")]

    matched = {
        name for name, props in filters.items() for line in lines if compile_pattern(props["FilterPattern"])(line)
    }

    assert matched == {"FailedFast", "StoreUnavailable"}


def test_every_fail_state_of_the_workflow_is_counted(default_assembly: Assembly) -> None:
    """A new end state in the workflow file needs its line in ``OUTCOME_OF_STATE``."""
    (machine,) = [
        r for r in default_assembly.template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    states = json.loads(machine["Properties"]["DefinitionString"])["States"]
    fail_states = {name for name, state in states.items() if state["Type"] == "Fail"}

    assert fail_states - set(breaker_metrics.OUTCOME_OF_STATE) == set()


def test_per_service_filters_match_their_own_service_only(bare: Template) -> None:
    filters = _filters(bare.to_json())
    lines = {
        "open": _failed(
            "CircuitOpen", "Circuit open for service orders until 2026-11-23T08:30:00.000Z: the service ..."
        ),
        "held": _failed("CircuitOpen", "Circuit held open for service orders by an operator until further notice: ..."),
        "half": _failed(
            "CircuitOpen", "Circuit half-open for service orders until 2026-11-23T08:30:05.000Z: a probe ..."
        ),
        "timeout": _failed("ServiceTimeout", "Service orders did not answer within its timeout of 3 s on any attempt."),
        "other service": _failed("CircuitOpen", "Circuit open for service ordersv2 until 2026-11-23T08:30:00.000Z"),
        "its own error": _failed("OrdersFailed", '{"errorMessage": "Circuit open for service orders until"}'),
    }

    matched = {
        key: sorted(name for name, props in filters.items() if compile_pattern(props["FilterPattern"])(line))
        for key, line in lines.items()
    }

    assert matched == {
        "open": ["FailedFast.orders"],
        "held": ["FailedFast.orders"],
        "half": ["FailedFast.orders"],
        "timeout": ["TimedOut.orders"],
        "other service": [],
        "its own error": [],
    }


def test_the_workflow_error_filter_counts_only_step_functions_own_errors(bare: Template) -> None:
    matches = compile_pattern(_filters(bare.to_json())["WorkflowErrors"]["FilterPattern"])
    assert matches(_failed("States.Runtime", "An error occurred while executing the state 'X'"))
    assert not matches(_failed("ServiceFailed", "Service orders failed: ..."))
    assert not matches(_failed("CircuitOpen", "Circuit open for service orders until ..."))


def test_the_fast_fail_path_still_runs_no_lambda(default_assembly: Assembly) -> None:
    """Monitoring reads the log: the Fail states of a fast fail are reached from the start through
    no Task that invokes a Lambda, and nothing subscribes a function to the workflow's log."""
    template = default_assembly.template
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = json.loads(machine["Properties"]["DefinitionString"])
    states = definition["States"]

    def invokes_lambda(state: dict[str, Any]) -> bool:
        return state["Type"] == "Task" and ":lambda:" in state.get("Resource", "")

    reached, frontier = set(), [definition["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reached or invokes_lambda(states[name]):
            continue
        reached.add(name)
        state = states[name]
        frontier += [state[key] for key in ("Next", "Default") if key in state]
        frontier += [choice["Next"] for choice in state.get("Choices", [])]
        frontier += [catch["Next"] for catch in state.get("Catch", [])]

    assert {"CircuitOpen", "CircuitHeldOpen", "CircuitRecovering", "FailFast"} <= reached
    assert {states[name]["Resource"] for name in reached if states[name]["Type"] == "Task"} == {
        "arn:aws:states:::dynamodb:getItem"
    }
    kinds = Counter(r["Type"] for r in template["Resources"].values())
    assert kinds["AWS::Logs::SubscriptionFilter"] == 0
    assert kinds["AWS::Lambda::Function"] == 4  # RecordFailure, ClaimProbe, StreamMirror, the demo service


# --- Alarms ------------------------------------------------------------------------------------


def test_a_circuit_open_alarm_per_service_fires_on_open_and_clears_on_close(bare: Template) -> None:
    template = bare.to_json()
    for service in SERVICES:
        alarm = _alarm(template, f"BreakerMonitoringCircuitOpen{service}")
        assert (
            alarm["Threshold"],
            alarm["ComparisonOperator"],
            alarm["EvaluationPeriods"],
            alarm["DatapointsToAlarm"],
            alarm["TreatMissingData"],
        ) == (1, "GreaterThanOrEqualToThreshold", 1, 1, "ignore")
        queries = {q["Id"]: q for q in alarm["Metrics"]}
        assert queries["expr_1"]["Expression"] == (
            "IF(FILL(opened, 0) - FILL(closed, 0) > 0, 1, IF(FILL(closed, 0) > 0, 0))"
        )
        for query_id, name in (("opened", "CircuitOpened"), ("closed", "CircuitClosed")):
            stat = queries[query_id]["MetricStat"]
            assert stat["Metric"] == {
                "MetricName": name,
                "Namespace": "CircuitBreaker",
                "Dimensions": [{"Name": "Circuit", "Value": service}, {"Name": "service", "Value": "circuit-breaker"}],
            }
            assert (stat["Period"], stat["Stat"]) == (60, "Sum")


# (logical id prefix, metric namespace, metric name, statistic, threshold, period)
BREAKER_ALARMS = [
    ("BreakerMonitoringWorkflowErrors", "CircuitBreaker", "WorkflowErrors", "Sum", 1, 300),
    ("BreakerMonitoringExecutionsTimedOut", "AWS/States", "ExecutionsTimedOut", "Sum", 1, 300),
    ("BreakerMonitoringExecutionThrottled", "AWS/States", "ExecutionThrottled", "Sum", 1, 300),
    ("BreakerMonitoringRecordFailureErrors", "AWS/Lambda", "Errors", "Sum", 1, 300),
    ("BreakerMonitoringClaimProbeErrors", "AWS/Lambda", "Errors", "Sum", 1, 300),
    ("BreakerMonitoringStreamMirrorErrors", "AWS/Lambda", "Errors", "Sum", 1, 300),
    ("BreakerMonitoringStreamMirrorBehind", "AWS/Lambda", "IteratorAge", "Maximum", 60000, 300),
]


@pytest.mark.parametrize(("prefix", "namespace", "name", "statistic", "threshold", "period"), BREAKER_ALARMS)
def test_breaker_wide_alarms(
    bare: Template, prefix: str, namespace: str, name: str, statistic: str, threshold: int, period: int
) -> None:
    alarm = _alarm(bare.to_json(), prefix)
    if "Metrics" in alarm:  # a labelled metric is written as a one-metric query
        ((query,),) = [alarm["Metrics"]]
        stat = query["MetricStat"]
        alarm = {**alarm, **stat["Metric"], "Statistic": stat["Stat"], "Period": stat["Period"]}
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        namespace,
        name,
        statistic,
        period,
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (
        threshold,
        "GreaterThanOrEqualToThreshold",
        1,
        "notBreaching",
    )


@pytest.mark.parametrize("name", ["StoreFault", "RecordFailureFailed", "CorruptItem"])
def test_alarms_on_the_functions_own_metrics_sum_every_circuit(bare: Template, name: str) -> None:
    alarm = _alarm(bare.to_json(), f"BreakerMonitoring{name}")
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    assert queries["expr_1"]["Expression"] == "FILL(m0, 0) + FILL(m1, 0)"
    circuits = sorted(
        next(d["Value"] for d in queries[key]["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "Circuit")
        for key in ("m0", "m1")
    )
    assert circuits == list(SERVICES)
    assert {queries[key]["MetricStat"]["Metric"]["MetricName"] for key in ("m0", "m1")} == {name}
    assert {queries[key]["MetricStat"]["Period"] for key in ("m0", "m1")} == {300}
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
        "notBreaching",
    )


def test_a_user_style_app_synthesizes_without_a_warning_from_the_construct() -> None:
    # GIVEN an app of a user's: two services behind the breaker, alarms on (the default)
    stack, _ = bare_breaker()

    # THEN synthesizing it leaves no warning on the construct (MetricsPeriodsOverridden was one per
    # summed alarm: StoreFault, RecordFailureFailed, CorruptItem) and no error
    annotations = Annotations.from_stack(stack)
    assert annotations.find_warning("*", Match.any_value()) == []
    assert annotations.find_error("*", Match.any_value()) == []


def test_every_alarm_says_why_its_threshold(bare: Template) -> None:
    alarms = _alarms(bare.to_json())
    assert len(alarms) == len(SERVICES) + len(BREAKER_ALARMS) + 3
    assert all("Why this threshold:" in a["AlarmDescription"] for a in alarms.values())


def test_an_alarm_topic_is_told_when_an_alarm_fires_and_when_it_clears() -> None:
    stack = cdk.Stack(cdk.App(), "WithTopic")
    topic = sns.Topic(stack, "OnCall")
    _, breaker = _breaker_in(stack, alarm_topic=topic)
    template = Template.from_stack(stack).to_json()
    topic_ref = {"Ref": stack.get_logical_id(topic.node.default_child)}  # type: ignore[arg-type]

    for alarm in _alarms(template).values():
        assert alarm["AlarmActions"] == [topic_ref]
        assert alarm["OKActions"] == [topic_ref]
    assert set(breaker.circuit_open_alarms) == set(SERVICES)
    assert len(breaker.alarms) == len(_alarms(template))


def _breaker_in(stack: cdk.Stack, **props: Any) -> tuple[cdk.Stack, CircuitBreaker]:
    from aws_cdk import aws_lambda as lambda_

    from sfn_breaker.cdk import ProtectedService

    services = {
        name: ProtectedService(
            function=lambda_.Function(
                stack,
                name.title(),
                runtime=lambda_.Runtime.PYTHON_3_13,
                handler="index.handler",
                code=lambda_.Code.from_inline("def handler(event, context):\n    return event"),
            )
        )
        for name in SERVICES
    }
    return stack, CircuitBreaker(stack, "Breaker", services=services, **props)


# --- Dashboard ---------------------------------------------------------------------------------


def _dashboard_body(template: dict[str, Any]) -> str:
    (dashboard,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return "".join(p if isinstance(p, str) else "<token>" for p in parts)


def test_the_dashboard_has_a_row_per_service_and_the_workflows_counts_and_latency(bare: Template) -> None:
    body = json.loads(_dashboard_body(bare.to_json()))
    titles = [w["properties"].get("title") for w in body["widgets"]]
    for service in SERVICES:
        assert f"{service}: circuit" in titles
        assert f"{service}: calls" in titles
        calls = next(w for w in body["widgets"] if w["properties"].get("title") == f"{service}: calls")
        rendered = json.dumps(calls["properties"]["metrics"])
        assert f"FailedFast.{service}" in rendered and f"TimedOut.{service}" in rendered
    assert "Executions (calls)" in titles
    latency = next(w for w in body["widgets"] if w["properties"].get("title") == "Execution time (ms)")
    assert sorted(m[-1]["stat"] for m in latency["properties"]["metrics"]) == ["p50", "p90", "p99"]
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert any("stats count(*) as fastFails by service" in q for q in queries)


def test_the_dashboard_name_is_a_prop() -> None:
    template = _template(dashboard_name="payments-breaker")
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "payments-breaker"})


# --- Switching it off ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "filters", "alarms", "dashboards"),
    [
        ({"monitoring": False}, 0, 0, 0),
        ({"alarms": False}, 11, 0, 1),
        ({"dashboard": False}, 11, 12, 0),
    ],
)
def test_props_switch_monitoring_off(props: dict[str, Any], filters: int, alarms: int, dashboards: int) -> None:
    stack, breaker = bare_breaker(**props)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Logs::MetricFilter", filters)
    template.resource_count_is("AWS::CloudWatch::Alarm", alarms)
    template.resource_count_is("AWS::CloudWatch::Dashboard", dashboards)
    assert len(breaker.alarms) == alarms
    assert (breaker.dashboard is not None) == bool(dashboards)


def test_too_many_services_for_the_log_groups_metric_filters_fail_at_synth() -> None:
    from aws_cdk import aws_lambda as lambda_

    from sfn_breaker.cdk import ProtectedService

    stack = cdk.Stack(cdk.App(), "Many")
    function = lambda_.Function(
        stack,
        "Shared",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event"),
    )
    services = {f"s{i}": ProtectedService(function=function) for i in range(47)}
    with pytest.raises(SettingsError, match="metric filters"):
        CircuitBreaker(stack, "Breaker", services=services)


def test_a_namespace_of_its_own_for_the_filters_and_the_functions() -> None:
    template = _template(metrics_namespace="Payments/Breaker").to_json()
    assert {f["MetricTransformations"][0]["MetricNamespace"] for f in _filters(template).values()} == {
        "Payments/Breaker"
    }
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    namespaces = {
        f["Properties"]["Environment"]["Variables"].get("POWERTOOLS_METRICS_NAMESPACE")
        for f in functions
        if "Environment" in f["Properties"]
    }
    assert namespaces == {"Payments/Breaker"}


# --- The table's safety ------------------------------------------------------------------------


def test_the_table_has_deletion_protection_pitr_and_aws_managed_encryption_by_default(bare: Template) -> None:
    bare.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "DeletionProtectionEnabled": True,
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True, "KMSMasterKeyId": Match.absent()},
        },
    )


def test_deletion_protection_can_be_turned_off_and_the_demo_does() -> None:
    _template(table_deletion_protection=False).has_resource_properties(
        "AWS::DynamoDB::Table", {"DeletionProtectionEnabled": False}
    )


def test_a_customer_managed_key_encrypts_the_table_and_each_role_may_use_it_for_what_it_does() -> None:
    stack = cdk.Stack(cdk.App(), "Keyed")
    key = kms.Key(stack, "TableKey", enable_key_rotation=True)
    _breaker_in(stack, encryption_key=key)
    template = Template.from_stack(stack)
    key_ref = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]
    template.has_resource_properties(
        "AWS::DynamoDB::Table", {"SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_ref}}
    )

    statements = _key_statements(template.to_json(), key_ref)
    assert statements["WorkflowKeyGrants"] == {"kms:Decrypt", "kms:DescribeKey"}
    for function in ("RecordFailure", "ClaimProbe", "StreamMirror"):
        assert {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"} <= statements[function]
        assert not any("*" in action for action in statements[function]), function


def _key_statements(template: dict[str, Any], key_ref: dict[str, Any]) -> dict[str, set[str]]:
    """Policy (by the role or policy it belongs to) -> the actions it allows on the key."""
    found: dict[str, set[str]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] != key_ref:
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            owner = next(
                (n for n in ("WorkflowKeyGrants", "RecordFailure", "ClaimProbe", "StreamMirror") if n in logical_id),
                logical_id,
            )
            found.setdefault(owner, set()).update(actions)
    return found


# --- What the emulator can show ------------------------------------------------------------------


def _synthesized_filters(assembly: Assembly) -> dict[str, Any]:
    return {name: compile_pattern(p["FilterPattern"]) for name, p in _filters(assembly.template).items()}


def _counted(assembly: Assembly, breaker: Breaker, arn: str) -> Counter[str]:
    """Each metric filter of the template, run on the log lines AWS would write for the execution."""
    history = breaker.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    lines = log_events(history, arn)
    counts: Counter[str] = Counter()
    for name, matches in _synthesized_filters(assembly).items():
        counts[name] += sum(matches(line) for line in lines)
    return +counts


def _emf(output: str) -> list[dict[str, Any]]:
    """The EMF metric lines the in-process handlers printed: namespace, name, dimensions."""
    found = []
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line[line.index("{") :])
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                dimensions = sorted((name, record[name]) for name in directive["Dimensions"][0])
                found.append(
                    {"Namespace": directive["Namespace"], "MetricName": metric["Name"], "Dimensions": dimensions}
                )
    return found


def _alarm_inputs(template: dict[str, Any], service: str) -> list[dict[str, Any]]:
    alarm = _alarm(template, f"BreakerMonitoringCircuitOpen{service}")
    return [
        {
            "Namespace": q["MetricStat"]["Metric"]["Namespace"],
            "MetricName": q["MetricStat"]["Metric"]["MetricName"],
            "Dimensions": sorted((d["Name"], d["Value"]) for d in q["MetricStat"]["Metric"]["Dimensions"]),
        }
        for q in alarm["Metrics"]
        if "MetricStat" in q
    ]


def test_a_fast_fail_and_a_held_open_circuit_produce_the_lines_the_filters_count(fast_assembly: Assembly) -> None:
    with deployed_breaker(fast_assembly) as breaker:
        breaker.operator_writes({"ServiceName": "payment", "ExpiryTimeStamp": int(time.time()) + 600})
        open_call = breaker.call({"mode": "ok"})
        breaker.operator_writes({"ServiceName": "payment", "Forced": "OPEN"})
        held_call = breaker.call({"mode": "ok"})

        assert (open_call.error, held_call.error) == ("CircuitOpen", "CircuitOpen")
        assert breaker.service_calls() == 0
        assert _counted(fast_assembly, breaker, open_call.arn) == {"FailedFast": 1, "FailedFast.payment": 1}
        assert _counted(fast_assembly, breaker, held_call.arn) == {"FailedFast": 1, "FailedFast.payment": 1}


def test_a_circuit_opening_and_closing_produce_what_its_alarm_reads(
    fast_assembly: Assembly, capsys: pytest.CaptureFixture[str]
) -> None:
    service = ScriptedService("fail", "fail", "fail", then="ok")
    with deployed_breaker(fast_assembly, service) as breaker:
        failed = breaker.call({"mode": "ok"})
        fast = breaker.call({"mode": "ok"})
        opened = _emf(capsys.readouterr().out)
        breaker.table.delete_item(Key={"ServiceName": "payment"})  # `breaker close payment`
        breaker.runtime.settle()
        closed = _emf(capsys.readouterr().out)

        assert (failed.error, fast.error) == ("ServiceError", "CircuitOpen")
        assert _counted(fast_assembly, breaker, failed.arn) == {"ServiceErrors": 1}
        assert _counted(fast_assembly, breaker, fast.arn) == {"FailedFast": 1, "FailedFast.payment": 1}
    reads = {m["MetricName"]: m for m in _alarm_inputs(fast_assembly.template, "payment")}
    assert reads["CircuitOpened"] in opened
    assert reads["CircuitClosed"] in closed
    assert reads["CircuitClosed"] not in opened


def test_operating_it_names_every_metric_and_alarm() -> None:
    """The docs' "Operating it" is the on-call engineer's page: nothing the breaker measures or
    alarms on is missing from it."""
    section = (REPOSITORY / "docs" / "operating.md").read_text()
    metric_names = [
        value
        for name, value in vars(breaker_metrics).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z]+", value)
    ]
    alarm_names = ["CircuitOpen-<service>", "RecordFailureErrors", "ClaimProbeErrors", "StreamMirrorErrors"]
    alarm_names += [name for name in ALARM_SPECS if name not in ("CircuitOpen", "LambdaErrors")]

    assert [name for name in metric_names + alarm_names if f"`{name}`" not in section] == []
    assert "stats count(*) as fastFails by service" in section


def test_the_filter_evaluator_follows_awss_wildcard_rules() -> None:
    assert compile_pattern('{ $.a = "Ev*" }')('{"a": "Event"}')
    assert compile_pattern('{ $.a = "*ent" }')('{"a": "Event"}')
    assert not compile_pattern('{ $.a = "Ev*ent" }')('{"a": "Event"}')
    assert compile_pattern('{ $.a = "x" || $.b = "y" && $.c = "z" }')('{"a": "x", "b": "n"}')
    assert not compile_pattern('{ $.a.b = "x" }')('{"a": {"b": {"c": "x"}}}')
    assert not compile_pattern('{ $.a = "x" }')('{"a": ["x"]}')
