"""The synthesized template: what `cdk deploy` would create, checked resource by resource."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from sfn_breaker.local.assembly import Assembly
from tests.conftest import READ_SHARDS


@pytest.fixture(scope="module")
def template(default_assembly: Assembly) -> Template:
    return Template.from_json(default_assembly.template)


def _resources(assembly: Assembly, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in assembly.template["Resources"].items() if v["Type"] == kind}


def _one(assembly: Assembly, kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = _resources(assembly, kind).items()
    return found


def _definition(assembly: Assembly) -> dict[str, Any]:
    _, machine = _one(assembly, "AWS::StepFunctions::StateMachine")
    result: dict[str, Any] = json.loads(machine["Properties"]["DefinitionString"])
    return result


def test_workflow_is_express_with_its_own_logs_and_tracing(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "EXPRESS",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {
                "Level": "ERROR",
                "IncludeExecutionData": False,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": Match.any_value()}}],
            },
        },
    )


def test_table_is_keyed_by_service_with_ttl_on_expiry(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "ServiceName", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "ServiceName", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "ExpiryTimeStamp", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        },
    )


def test_stream_feeds_the_mirror_function(default_assembly: Assembly) -> None:
    _, mapping = _one(default_assembly, "AWS::Lambda::EventSourceMapping")
    table_id, _ = _one(default_assembly, "AWS::DynamoDB::Table")
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    function_id = mapping["Properties"]["FunctionName"]["Ref"]
    function = default_assembly.template["Resources"][function_id]
    assert function["Properties"]["Handler"] == "sfn_breaker.lambdas.stream_mirror.handler"
    assert mapping["Properties"]["BisectBatchOnFunctionError"] is True


@pytest.mark.parametrize(("variant", "setting"), [("default", {}), ("fast_sharded", {"payment": READ_SHARDS})])
def test_a_deploy_resyncs_the_read_shards_whenever_the_setting_changes(
    assemblies: dict[str, Assembly], variant: str, setting: dict[str, int]
) -> None:
    """StreamMirror is the custom resource's function; the resource's one property is READ_SHARDS,
    so CloudFormation sends it an Update (a resync) exactly when the setting changes. It runs after
    the function's grants and after the stream's mapping exists."""
    assembly = assemblies[variant]
    _, resource = _one(assembly, "Custom::ReadShardsInStep")
    mapping_id, mapping = _one(assembly, "AWS::Lambda::EventSourceMapping")
    function_id = mapping["Properties"]["FunctionName"]["Ref"]
    function = assembly.template["Resources"][function_id]["Properties"]
    assert resource["Properties"] == {
        "ServiceToken": {"Fn::GetAtt": [function_id, "Arn"]},
        "ReadShards": json.dumps(setting),
    }
    assert function["Environment"]["Variables"]["READ_SHARDS"] == json.dumps(setting)
    role_id = function["Role"]["Fn::GetAtt"][0]
    policies = [
        k for k, v in _resources(assembly, "AWS::IAM::Policy").items() if {"Ref": role_id} in v["Properties"]["Roles"]
    ]
    assert {mapping_id, role_id, *policies} <= set(resource["DependsOn"])
    assert resource["DeletionPolicy"] == "Delete"


def test_outputs(template: Template) -> None:
    for name in ("StateMachineArn", "TableName", "DemoServiceFunctionName"):
        template.has_output(name, {"Value": Match.any_value()})


def test_service_settings_come_from_the_defaults(default_assembly: Assembly) -> None:
    configure = _definition(default_assembly)["States"]["Configure payment"]
    assert configure["Result"] == {
        "FunctionArn": "${ServiceFunctionArn0}",
        "TimeoutSeconds": 3,
        "Retries": 2,
        "RetryDelaysSeconds": [1, 2],
        "StoreFaultPolicy": "CALL",
        "ReadShards": 1,  # off: GetCircuitStatus reads the service's own item, as every writer writes it
        "CircuitKeys": ["payment", "payment"],
        "IgnoredErrors": ["PaymentDeclined", "InvalidDemoRequest"],  # the demo stack's own
        "Fallback": {"Kind": "none", "OnFailure": False},
        "Policy": {
            "OpenDurationSeconds": 30,
            "FailureThreshold": 1,
            "FailureWindowSeconds": 60,
            "HalfOpenProbes": 1,
            "ProbeLeaseSeconds": 3 * 3 + 1 + 2 + 5,  # the worst case of one execution, and a margin
            "OpenDurationGrowth": 1.0,
            "MaxOpenDurationSeconds": 600,
            "SuccessThreshold": 1,
            "SlowStartSeconds": 0,
            "FailedAttemptsThreshold": 10,
        },
    }


def test_service_settings_come_from_context(fast_assembly: Assembly) -> None:
    # conftest.FAST_CONTEXT: timeout 1 s, no retry wait, three attempts.
    configure = _definition(fast_assembly)["States"]["Configure payment"]["Result"]
    assert (configure["TimeoutSeconds"], configure["Retries"], configure["RetryDelaysSeconds"]) == (1, 2, [0, 0])


def test_the_service_call_uses_the_service_timeout_and_the_retry_loop(default_assembly: Assembly) -> None:
    states = _definition(default_assembly)["States"]
    call = states["ExecuteLambda"]
    assert call["Resource"] == "arn:aws:states:::lambda:invoke"
    assert call["TimeoutSecondsPath"] == "$.Service.TimeoutSeconds"
    # An answer too large for a state is caught by name first: not a failure, never retried.
    assert [(c["ErrorEquals"], c["Next"]) for c in call["Catch"]] == [
        (["States.DataLimitExceeded"], "ServiceResponseTooLarge"),
        (["States.ALL"], "ClassifyFailure"),
    ]
    assert states["ServiceResponseTooLarge"]["Type"] == "Fail"
    assert states["IsIgnoredError"]["Default"] == "ShouldRetry"
    assert states["WaitBeforeRetry"]["SecondsPath"] == "$.Retry.DelaySeconds"
    assert states["ShouldRetry"]["Default"] == "RecordFailure"


def test_state_names_follow_the_documented_flow(default_assembly: Assembly) -> None:
    states = _definition(default_assembly)["States"]
    assert states["RouteService"]["Choices"] == [
        {"Variable": "$.PayloadIsEmptyArray", "BooleanEquals": True, "Next": "InvalidPayload"},
        {"Variable": "$.ServiceName", "StringEquals": "payment", "Next": "Configure payment"},
    ]
    assert states["Configure payment"]["Next"] == "GetCircuitStatus"
    assert states["GetCircuitStatus"]["Resource"] == "arn:aws:states:::dynamodb:getItem"
    assert states["GetCircuitStatus"]["Next"] == "IsCircuitClosed"
    assert {c["Next"] for c in states["IsCircuitClosed"]["Choices"]} == {
        "ExecuteLambda",
        "CircuitOpen",
        "CircuitHeldOpen",
        "ClaimProbe",
        "SlowStartAdmit10Percent",
        "SlowStartAdmit50Percent",
    }
    # Every fast fail states its reason, then the service's fallback answers or the call fails fast.
    for reason in (
        "CircuitOpen",
        "CircuitHeldOpen",
        "CircuitNotCalled",
        "CircuitRecovering",
        "CircuitStoreUnavailable",
    ):
        assert states[reason]["Next"] == "FallbackOrFailFast"
    assert states["FallbackOrFailFast"]["Default"] == "FailFast"
    assert states["FailFast"]["Type"] == "Fail"


def test_the_breakers_own_error_names_are_never_a_services(default_assembly: Assembly) -> None:
    from sfn_breaker.contract import BREAKER_ERRORS

    rules = _definition(default_assembly)["States"]["ServiceFailed"]["Choices"]
    renamed = [r for r in rules if "Or" in r and r["Next"] == "FailWithStatesError"]
    assert len(renamed) == 1
    assert {c["StringEquals"] for c in renamed[0]["Or"]} == set(BREAKER_ERRORS)


def test_placeholders_and_substitutions_match_both_ways(default_assembly: Assembly) -> None:
    _, machine = _one(default_assembly, "AWS::StepFunctions::StateMachine")
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", machine["Properties"]["DefinitionString"]))
    assert placeholders == set(machine["Properties"]["DefinitionSubstitutions"])
    assert {
        "CircuitTableName",
        "RecordFailureFunctionArn",
        "ClaimProbeFunctionArn",
        "ServiceFunctionArn0",
    } <= placeholders


def test_no_arn_or_table_name_is_written_into_the_definition_file() -> None:
    from sfn_breaker.cdk.assets import workflow_definition

    text = workflow_definition()
    assert "arn:aws:lambda" not in text and "arn:aws:dynamodb" not in text
    assert set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)) == {
        "CircuitTableName",
        "RecordFailureFunctionArn",
        "ClaimProbeFunctionArn",
        "RegisteredServices",
    }


def _policy_statements(assembly: Assembly, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in _resources(assembly, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_workflow_role_is_scoped_to_the_table_and_the_registered_functions(default_assembly: Assembly) -> None:
    (role_id,) = [
        k
        for k, v in _resources(default_assembly, "AWS::IAM::Role").items()
        if "states.amazonaws.com" in json.dumps(v["Properties"]["AssumeRolePolicyDocument"])
    ]
    statements = _policy_statements(default_assembly, role_id)
    table_id, _ = _one(default_assembly, "AWS::DynamoDB::Table")
    functions = {
        k: v["Properties"]["Handler"] for k, v in _resources(default_assembly, "AWS::Lambda::Function").items()
    }
    invoked: set[str] = set()
    for statement in statements:
        actions = set(_as_list(statement["Action"]))
        resources = _as_list(statement["Resource"])
        if actions & {"lambda:InvokeFunction"}:
            assert actions == {"lambda:InvokeFunction"}
            assert "*" not in resources
            for resource in resources:
                text = json.dumps(resource)
                (function_id,) = [f for f in functions if f in text]
                invoked.add(functions[function_id])
        elif any(a.startswith("dynamodb:") for a in actions):
            assert actions == {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
            assert resources == [{"Fn::GetAtt": [table_id, "Arn"]}]
        else:
            # What AWS itself requires to be "*": log delivery and X-Ray (no resource-level scoping exists).
            assert all(a.startswith(("logs:", "xray:")) for a in actions), actions
    assert invoked == {
        "demo_service.handler",
        "sfn_breaker.lambdas.record_failure.handler",
        "sfn_breaker.lambdas.claim_probe.handler",
    }


def test_breaker_functions_get_only_the_table_actions_they_use(default_assembly: Assembly) -> None:
    table_id, _ = _one(default_assembly, "AWS::DynamoDB::Table")
    for function in _resources(default_assembly, "AWS::Lambda::Function").values():
        props = function["Properties"]
        role_id = props["Role"]["Fn::GetAtt"][0]
        statements = _policy_statements(default_assembly, role_id)
        table_actions = {
            action
            for s in statements
            for action in _as_list(s["Action"])
            if action.startswith("dynamodb:") and {"Fn::GetAtt": [table_id, "Arn"]} in _as_list(s["Resource"])
        }
        expected = {
            "demo_service.handler": set(),
            "sfn_breaker.lambdas.record_failure.handler": {"dynamodb:GetItem", "dynamodb:PutItem"},
            "sfn_breaker.lambdas.claim_probe.handler": {"dynamodb:GetItem", "dynamodb:PutItem"},
            # The OpenUntil mirror; and the read shards (docs/scale.md): it reads base items, lists the
            # table on deploy, and writes and deletes shard items only (keys with "#").
            "sfn_breaker.lambdas.stream_mirror.handler": {
                "dynamodb:UpdateItem",
                "dynamodb:GetItem",
                "dynamodb:Scan",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
            },
        }
        assert table_actions == expected[props["Handler"]], props["Handler"]
        for statement in statements:
            actions = set(_as_list(statement["Action"]))
            if props["Handler"].endswith("stream_mirror.handler") and actions & {
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
            }:
                assert actions == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
                assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*#*"]}}
        if props["Handler"] != "demo_service.handler":
            assert props["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": table_id}
            assert props["TracingConfig"] == {"Mode": "Active"}


#: Every intrinsic function the workflow may use, with why its use stays within what Step Functions
#: documents for it. States.Hash, States.Base64Encode and States.Base64Decode take at most 10,000
#: characters, so none of them may touch the payload or a service's error: they are left out, and a
#: definition that uses one fails here. (States.ArrayRange, 1,000 items at most, is not used either.)
INTRINSICS_WITHIN_LIMITS = {
    "States.Array": "one constant element, [] (to compare the payload with)",
    "States.StringToJson": "the constant '[]', and a DynamoDB Number's digits",
    "States.ArrayContains": "compares the payload as a value: no input limit, no copy of the payload",
    "States.ArrayGetItem": "the retry delays, indexed by the attempt count, which maxAttempts bounds; "
    "a service's circuit keys (readShards + 1 of them), indexed by a draw from 0 to readShards",
    "States.MathAdd": "the attempt count, far inside the 32-bit integers MathAdd takes",
    "States.MathRandom": "1 to 100, for slow start's admission; 0 to readShards (32 at most), for the shard read",
    "States.Format": "causes of Fail states; a service's error inside one is the cause Step Functions already capped",
    "States.JsonToString": "a caught service error ($.Failure) only, never the payload",
}


def test_every_intrinsic_stays_within_its_documented_limits(default_assembly: Assembly) -> None:
    text = json.dumps(_definition(default_assembly))
    used = set(re.findall(r"States\.[A-Za-z0-9]+(?=\()", text))
    assert used - INTRINSICS_WITHIN_LIMITS.keys() == set(), "an intrinsic with no reason it stays within its limits"
    # The only intrinsic that reads the payload compares it; none serializes or hashes it.
    reads_payload = re.findall(r"States\.[A-Za-z]+\([^\"]*\$\.Payload\b[^\"]*", text)
    assert reads_payload == ["States.ArrayContains(States.Array(States.StringToJson('[]')), $.Payload)"]
