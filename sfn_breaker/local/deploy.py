"""Deploy a synthesized stack into moto, and check what runs against the template.

moto's CloudFormation does not apply ``DefinitionSubstitutions``, ``StateMachineType`` or a
table's TTL, and a state machine it creates from a template is not visible to the executing
Step Functions backend (measured, see shared/MOTO_NOTES.md). So ``deploy_stack`` publishes the
assembly's assets, creates the stack from the synthesized template through moto's
CloudFormation, and creates the one resource it cannot (the state machine) through the Step
Functions API from the same template, with the substitutions resolved by CloudFormation itself
(as extra stack outputs). ``check_deployment`` compares what runs with the template.

Monitoring has no effect on a call, and moto's CloudFormation creates none of it: the workflow's
metric filters are put through the Logs API (so they can be listed), while alarms and the
dashboard are left out (``NOT_EMULATED``: moto would not evaluate them).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfn_breaker.core.model import READ_SHARDS_RESOURCE_TYPE, RESYNC_READ_SHARDS_EVENT
from sfn_breaker.local.assembly import Assembly

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
#: The emulator's own outputs: how it has CloudFormation resolve what it needs to create the
#: state machine. They are read once and removed from the stack, so ``describe-stacks`` shows the
#: template's outputs only.
_LOCAL_OUTPUT_PREFIX = "Local"
_SUBSTITUTION_OUTPUT = "LocalSubstitution{}"
_ROLE_OUTPUT = "LocalStateMachineRole"
_LOGS_OUTPUT = "LocalStateMachineLogs"
_METRIC_FILTER = "AWS::Logs::MetricFilter"
#: Resource types the emulator does not create: monitoring only, which moto would not evaluate, and
#: the CDK's version reporting (``AWS::CDK::Metadata``, in every app that leaves ``versionReporting``
#: on): moto cannot create it and lists it without a ``LogicalResourceId``.
NOT_EMULATED = frozenset({"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::CDK::Metadata"})


class DeploymentError(RuntimeError):
    """The stack could not be deployed into the emulator, or does not match its template."""


@dataclass
class DeployedStack:
    """A stack deployed into the emulator: its outputs and where its pieces are."""

    name: str
    outputs: dict[str, str]
    state_machine_arn: str
    physical_ids: dict[str, str]


def deploy_stack(assembly: Assembly, session: Any) -> DeployedStack:
    """Deploy ``assembly``'s stack with the boto3 ``session`` (pointed at moto)."""
    template = assembly.template
    machines = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::StepFunctions::StateMachine"}
    if len(machines) != 1:
        raise DeploymentError(f"expected one state machine in the template, found {len(machines)}")
    ((machine_id, machine),) = machines.items()
    props = machine["Properties"]
    machine_name = f"{assembly.stack_name}-{machine_id}"
    sts = session.client("sts")
    account = sts.get_caller_identity()["Account"]
    region = session.region_name
    machine_arn = f"arn:aws:states:{region}:{account}:stateMachine:{machine_name}"

    _publish_assets(assembly, session, account, region)
    _ensure_bootstrap_parameter(session)

    cfn_template = json.loads(json.dumps(template))
    del cfn_template["Resources"][machine_id]
    metric_filters = {}
    resyncs = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in NOT_EMULATED:
            del cfn_template["Resources"][logical_id]
        elif resource["Type"] == READ_SHARDS_RESOURCE_TYPE:
            resyncs[logical_id] = cfn_template["Resources"].pop(logical_id)
        elif resource["Type"] == _METRIC_FILTER:
            metric_filters[logical_id] = cfn_template["Resources"].pop(logical_id)
    outputs = cfn_template.setdefault("Outputs", {})
    for name, output in list(outputs.items()):
        if _references(output, machine_id):
            outputs[name] = {**output, "Value": machine_arn}
    substitutions = props.get("DefinitionSubstitutions", {})
    for index, key in enumerate(substitutions):
        outputs[_SUBSTITUTION_OUTPUT.format(index)] = {"Value": substitutions[key]}
    outputs[_ROLE_OUTPUT] = {"Value": props["RoleArn"]}
    log_destinations = props.get("LoggingConfiguration", {}).get("Destinations", [])
    if log_destinations:
        outputs[_LOGS_OUTPUT] = {"Value": log_destinations[0]["CloudWatchLogsLogGroup"]["LogGroupArn"]}

    cfn = session.client("cloudformation")
    cfn.create_stack(
        StackName=assembly.stack_name,
        TemplateBody=json.dumps(cfn_template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName=assembly.stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise DeploymentError(f"stack {assembly.stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    resolved = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    _forget_outputs(stack["StackId"], [name for name in outputs if name.startswith(_LOCAL_OUTPUT_PREFIX)])
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=assembly.stack_name)["StackResources"]
        if "LogicalResourceId" in r  # moto lists a resource type it does not support without one
    }

    definition = props["DefinitionString"]
    if not isinstance(definition, str):
        raise DeploymentError("the state machine's DefinitionString must be a plain string")
    for index, key in enumerate(substitutions):
        definition = definition.replace(f"${{{key}}}", resolved.pop(_SUBSTITUTION_OUTPUT.format(index)))
    create: dict[str, Any] = {
        "name": machine_name,
        "definition": definition,
        "roleArn": resolved.pop(_ROLE_OUTPUT),
        "type": props.get("StateMachineType", "STANDARD"),
    }
    if "TracingConfiguration" in props:
        create["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
    if log_destinations:
        logging_config = props["LoggingConfiguration"]
        create["loggingConfiguration"] = {
            "level": logging_config.get("Level", "OFF"),
            "includeExecutionData": bool(logging_config.get("IncludeExecutionData", False)),
            "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": resolved.pop(_LOGS_OUTPUT)}}],
        }
    session.client("stepfunctions").create_state_machine(**create)
    physical[machine_id] = machine_arn

    _apply_table_ttl(template, physical, session)
    _put_metric_filters(metric_filters, physical, session)
    _resync_read_shards(resyncs, physical, session)
    return DeployedStack(assembly.stack_name, resolved, machine_arn, physical)


def invoked_functions(template: Mapping[str, Any]) -> list[str]:
    """The logical ids of the functions the breaker's workflow invokes (its substitutions' ``Fn::GetAtt``)."""
    found = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        for value in resource.get("Properties", {}).get("DefinitionSubstitutions", {}).values():
            get_att = value.get("Fn::GetAtt") if isinstance(value, Mapping) else None
            if (
                isinstance(get_att, list)
                and get_att
                and get_att[0] not in found
                and template["Resources"].get(get_att[0], {}).get("Type") == "AWS::Lambda::Function"
            ):
                found.append(get_att[0])
    return found


def service_functions(template: Mapping[str, Any]) -> dict[str, str]:
    """The logical id of each registered service's function, by service name (from the workflow's
    ``Configure <service>`` states and the substitutions their ARN placeholders name)."""
    found: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties", {})
        definition = props.get("DefinitionString")
        if not isinstance(definition, str):
            continue
        substitutions = props.get("DefinitionSubstitutions", {})
        for state_name, state in json.loads(definition).get("States", {}).items():
            if not state_name.startswith("Configure "):
                continue
            placeholders = re.findall(r"\$\{(ServiceFunctionArn\d+)\}", json.dumps(state.get("Result", {})))
            get_att = substitutions.get(placeholders[0], {}).get("Fn::GetAtt") if placeholders else None
            if isinstance(get_att, list) and get_att:
                found[state_name.removeprefix("Configure ")] = get_att[0]
    return found


def _forget_outputs(stack_id: str, names: list[str]) -> None:
    """Remove the emulator's own outputs from moto's record of the stack (its outputs and template).

    moto runs in this process (``mock_aws``), so its CloudFormation backend is at hand; an
    ``UpdateStack`` without them would make moto compare and touch every resource again.
    """
    from moto.cloudformation.models import cloudformation_backends

    _, _, _, region, account, _ = stack_id.split(":", 5)
    stack = cloudformation_backends[account][region].get_stack(stack_id)
    template_outputs = stack.template_dict.get("Outputs") or {}
    for name in names:
        template_outputs.pop(name, None)
        stack.output_map._parsed_outputs.pop(name, None)
    if not template_outputs:
        stack.template_dict.pop("Outputs", None)
    stack.template = json.dumps(stack.template_dict)


def _publish_assets(assembly: Assembly, session: Any, account: str, region: str) -> None:
    """Upload each file asset where the template expects it, as ``cdk deploy`` does."""
    s3 = session.client("s3")
    buckets: set[str] = set()
    for asset in assembly.assets.values():
        source = asset["source"]
        path = assembly.directory / source["path"]
        for destination in asset["destinations"].values():
            bucket = destination["bucketName"].replace("${AWS::AccountId}", account).replace("${AWS::Region}", region)
            if bucket not in buckets:
                _create_bucket(s3, bucket, region)
                buckets.add(bucket)
            body = _zip_directory(path) if source.get("packaging") == "zip" else path.read_bytes()
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**kwargs)


def _zip_directory(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


def _ensure_bootstrap_parameter(session: Any) -> None:
    session.client("ssm").put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value="30", Type="String", Overwrite=True)


def _apply_table_ttl(template: Mapping[str, Any], physical: Mapping[str, str], session: Any) -> None:
    dynamodb = session.client("dynamodb")
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        ttl = resource["Properties"].get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=physical[logical_id],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )


def _put_metric_filters(filters: Mapping[str, Any], physical: dict[str, str], session: Any) -> None:
    logs = session.client("logs")
    for logical_id, resource in filters.items():
        props = resource["Properties"]
        log_group = props["LogGroupName"]
        if isinstance(log_group, Mapping):
            log_group = physical[log_group["Ref"]]
        transformations = [
            {key[0].lower() + key[1:]: value for key, value in transformation.items()}
            for transformation in props["MetricTransformations"]
        ]
        logs.put_metric_filter(
            logGroupName=log_group,
            filterName=logical_id,
            filterPattern=props["FilterPattern"],
            metricTransformations=transformations,
        )
        physical[logical_id] = logical_id


def _resync_read_shards(resources: Mapping[str, Any], physical: dict[str, str], session: Any) -> None:
    """What the ``READ_SHARDS_RESOURCE_TYPE`` custom resource does on AWS: StreamMirror brings every
    read shard in step. moto would run a custom resource's function in Docker and wait for its
    answer on a URL, so the function is invoked here instead, through the Lambda API (in-process)."""
    for logical_id, resource in resources.items():
        token = resource.get("Properties", {}).get("ServiceToken", {})
        get_att = token.get("Fn::GetAtt") if isinstance(token, Mapping) else None
        function = physical.get(get_att[0]) if isinstance(get_att, list) and get_att else None
        if function is None:
            raise DeploymentError(f"{logical_id}: its ServiceToken names no function of the stack")
        response = session.client("lambda").invoke(FunctionName=function, Payload=json.dumps(RESYNC_READ_SHARDS_EVENT))
        if "FunctionError" in response:
            raise DeploymentError(f"{logical_id}: {response['Payload'].read().decode()}")
        physical[logical_id] = function


def _references(value: Any, logical_id: str) -> bool:
    if isinstance(value, Mapping):
        if value.get("Ref") == logical_id:
            return True
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] == logical_id:
            return True
        return any(_references(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(_references(v, logical_id) for v in value)
    return False


def check_deployment(assembly: Assembly, stack: DeployedStack, session: Any) -> list[str]:
    """Differences between what runs in the emulator and the synthesized template (empty: none)."""
    template = assembly.template
    problems: list[str] = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        name = stack.physical_ids.get(logical_id)
        if kind in NOT_EMULATED:
            continue
        if name is None:
            problems.append(f"{logical_id} ({kind}) was not deployed")
            continue
        if kind == "AWS::StepFunctions::StateMachine":
            described = session.client("stepfunctions").describe_state_machine(stateMachineArn=name)
            if described["type"] != props.get("StateMachineType", "STANDARD"):
                problems.append(f"{logical_id}: type {described['type']} != {props.get('StateMachineType')}")
            running = json.loads(described["definition"])
            expected = props["DefinitionString"]
            for key, value in props.get("DefinitionSubstitutions", {}).items():
                resolved = _resolve_substitution(value, template, stack, session)
                expected = expected.replace(f"${{{key}}}", f"<{key}>" if resolved is None else resolved)
            if _shape(running) != _shape(json.loads(expected)):
                problems.append(f"{logical_id}: the running definition differs from the template's")
            if "${" in described["definition"]:
                problems.append(f"{logical_id}: unresolved placeholders in the running definition")
        elif kind == "AWS::DynamoDB::Table":
            problems += _check_table(logical_id, props, name, session)
        elif kind == "AWS::Lambda::Function":
            problems += _check_function(logical_id, props, name, session)
        elif kind == _METRIC_FILTER:
            found = session.client("logs").describe_metric_filters(filterNamePrefix=name)["metricFilters"]
            if not any(f["filterName"] == name and f["filterPattern"] == props["FilterPattern"] for f in found):
                problems.append(f"{logical_id}: metric filter missing or different")
    return problems


def _resolve_substitution(value: Any, template: Mapping[str, Any], stack: DeployedStack, session: Any) -> str | None:
    """A substitution's value as CloudFormation resolves it (a literal, a ``Ref``, or a function's
    ``Arn``), so that table names and literal settings are compared too; ``None`` when unknown."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return None
    if "Ref" in value:
        return stack.physical_ids.get(value["Ref"])
    get_att = value.get("Fn::GetAtt")
    if isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == "Arn":
        name = stack.physical_ids.get(get_att[0])
        if name and template["Resources"].get(get_att[0], {}).get("Type") == "AWS::Lambda::Function":
            arn: str = session.client("lambda").get_function_configuration(FunctionName=name)["FunctionArn"]
            return arn
    return None


def _shape(definition: Any) -> Any:
    """A definition with resolved ARNs and names blanked, to compare structure and settings."""
    text = json.dumps(definition, sort_keys=True)
    text = re.sub(r"arn:aws:lambda:[^\"]+|<[A-Za-z0-9]+>", "<resolved>", text)
    return json.loads(text)


def _check_table(logical_id: str, props: Mapping[str, Any], name: str, session: Any) -> list[str]:
    dynamodb = session.client("dynamodb")
    table = dynamodb.describe_table(TableName=name)["Table"]
    problems = []
    if table["KeySchema"] != props["KeySchema"]:
        problems.append(f"{logical_id}: key schema {table['KeySchema']} != {props['KeySchema']}")
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    expected = props.get("TimeToLiveSpecification", {})
    if expected.get("Enabled") and (
        ttl.get("TimeToLiveStatus") != "ENABLED" or ttl.get("AttributeName") != expected["AttributeName"]
    ):
        problems.append(f"{logical_id}: TTL {ttl} != {expected}")
    stream = props.get("StreamSpecification")
    if stream and table.get("StreamSpecification", {}).get("StreamViewType") != stream["StreamViewType"]:
        problems.append(f"{logical_id}: stream {table.get('StreamSpecification')} != {stream}")
    protected = bool(props.get("DeletionProtectionEnabled", False))
    if bool(table.get("DeletionProtectionEnabled", False)) != protected:
        problems.append(f"{logical_id}: deletion protection {table.get('DeletionProtectionEnabled')} != {protected}")
    return problems


def _check_function(logical_id: str, props: Mapping[str, Any], name: str, session: Any) -> list[str]:
    config = session.client("lambda").get_function_configuration(FunctionName=name)
    problems = []
    for key in ("Handler", "Runtime", "Timeout", "MemorySize"):
        if key in props and config.get(key) != props[key]:
            problems.append(f"{logical_id}: {key} {config.get(key)!r} != {props[key]!r}")
    expected_env = props.get("Environment", {}).get("Variables", {})
    running_env = config.get("Environment", {}).get("Variables", {})
    for key, value in expected_env.items():
        if key not in running_env or (isinstance(value, str) and running_env[key] != value):
            problems.append(f"{logical_id}: environment {key} = {running_env.get(key)!r}, template {value!r}")
    return problems
