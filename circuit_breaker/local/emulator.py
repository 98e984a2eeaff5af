"""Deploy a synthesized stack into moto and run the project's Lambda handlers in-process.

moto parses and executes Step Functions definitions, but (measured, see shared/MOTO_NOTES.md):
it runs Lambda code only through Docker; its CloudFormation does not apply
``DefinitionSubstitutions``, ``StateMachineType`` or a table's TTL, and a state machine it
creates from a template is not visible to the executing Step Functions backend. So:

- ``deploy_stack`` publishes the assembly's assets, creates the stack from the synthesized
  template through moto's CloudFormation, and creates the one resource it cannot (the state
  machine) through the Step Functions API from the same template, with the substitutions
  resolved by CloudFormation itself (as extra stack outputs). ``check_deployment`` compares
  what runs with the template.
- ``LambdaRuntime`` replaces moto's Lambda invocation with an in-process call of the handler
  the function names (or of a scripted stand-in a test provides), and delivers the table's
  stream records to their function on a background thread, once each, as AWS does.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circuit_breaker.local.assembly import Assembly

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
_SUBSTITUTION_OUTPUT = "LocalSubstitution{}"
_ROLE_OUTPUT = "LocalStateMachineRole"
_LOGS_OUTPUT = "LocalStateMachineLogs"

Handler = Callable[[Any, Any], Any]


class DeploymentError(RuntimeError):
    """The stack could not be deployed into the emulator, or does not match its template."""


@dataclass
class LocalStack:
    """A stack deployed into the emulator: its outputs and where its pieces are."""

    name: str
    outputs: dict[str, str]
    state_machine_arn: str
    physical_ids: dict[str, str]


# --------------------------------------------------------------------------- deploy


def deploy_stack(assembly: Assembly, session: Any) -> LocalStack:
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
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=assembly.stack_name)["StackResources"]
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
    return LocalStack(assembly.stack_name, resolved, machine_arn, physical)


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


def check_deployment(assembly: Assembly, stack: LocalStack, session: Any) -> list[str]:
    """Differences between what runs in the emulator and the synthesized template (empty: none)."""
    template = assembly.template
    problems: list[str] = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        name = stack.physical_ids.get(logical_id)
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
    return problems


def _resolve_substitution(value: Any, template: Mapping[str, Any], stack: LocalStack, session: Any) -> str | None:
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


# --------------------------------------------------------------------------- Lambda runtime


@dataclass
class FakeContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 128
    timeout_seconds: int = 3
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function_name: str
    event: Any
    ok: bool = True
    error: str | None = None
    result: Any = None


class LambdaRuntime:
    """Runs Lambda invocations and stream deliveries in this process while installed.

    ``stand_in(name, handler)`` makes calls to a function (by name, ARN or a substring of its
    name) go to ``handler`` instead of its code: a test's scripted downstream service.
    """

    def __init__(self) -> None:
        self.invocations: list[Invocation] = []
        self._stand_ins: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stream_queue: queue.Queue[tuple[Any, str, dict[str, Any]] | None] = queue.Queue()
        self._stream_errors: list[str] = []
        self._worker: threading.Thread | None = None
        self._patches: list[tuple[Any, str, Any]] = []
        self._code_dirs: dict[str, Path] = {}

    # -- public API
    def stand_in(self, function: str, handler: Handler) -> None:
        self._stand_ins[function] = handler

    def calls_to(self, function: str) -> list[Invocation]:
        with self._lock:
            return [i for i in self.invocations if function in i.function_name]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every stream record written so far has been handled (and what that wrote)."""
        deadline = time.monotonic() + timeout
        while self._stream_queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("stream records still pending")
            time.sleep(0.005)
        if self._stream_errors:
            errors, self._stream_errors = self._stream_errors, []
            raise RuntimeError("stream handler failed:\n" + "\n".join(errors))

    @contextmanager
    def installed(self) -> Iterator[LambdaRuntime]:
        from moto.awslambda.models import LambdaBackend
        from moto.awslambda_simple.models import LambdaSimpleBackend

        runtime = self

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            return runtime._invoke(backend, function_name, body, response_headers)

        def send_dynamodb_items(backend: Any, function_arn: str, items: list[Any], source: str) -> str:
            runtime._enqueue_stream(backend, function_arn, items, source)
            return "queued"

        self._patch(LambdaSimpleBackend, "invoke", invoke)
        self._patch(LambdaBackend, "send_dynamodb_items", send_dynamodb_items)
        self._worker = threading.Thread(target=self._stream_worker, name="stream-delivery", daemon=True)
        self._worker.start()
        try:
            yield self
        finally:
            self._stream_queue.put(None)
            self._worker.join(timeout=10)
            for owner, name, original in reversed(self._patches):
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            self._patches.clear()
            for directory in self._code_dirs.values():
                if str(directory) in sys.path:
                    sys.path.remove(str(directory))
                shutil.rmtree(directory, ignore_errors=True)
            self._code_dirs.clear()

    # -- internals
    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._patches.append((owner, name, owner.__dict__.get(name)))
        setattr(owner, name, replacement)

    def _function(self, backend: Any, function_name: str) -> Any:
        return backend.get_function(function_name)

    def _handler_for(self, function: Any) -> Handler:
        for key, stand_in in self._stand_ins.items():
            if key in function.function_name or key == function.function_arn:
                return stand_in
        self._put_code_on_path(function)
        module_name, _, attribute = function.handler.rpartition(".")
        module = importlib.import_module(module_name)
        handler: Handler = getattr(module, attribute)
        return handler

    def _put_code_on_path(self, function: Any) -> None:
        """Make the function's deployed code importable: its zip, unpacked once, goes on sys.path.

        It is appended, so a module that is already importable (this project's own packages)
        is the one that runs; code only the deployed zip holds, such as the demo service, is
        found in the zip.
        """
        sha = function.code_sha_256
        if not sha or sha in self._code_dirs:
            return
        with self._lock:
            if sha in self._code_dirs:
                return
            directory = Path(tempfile.mkdtemp(prefix="breaker-code-"))
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
                archive.extractall(directory)
            self._code_dirs[sha] = directory
            sys.path.append(str(directory))

    def _invoke(self, backend: Any, function_name: str, body: Any, response_headers: Any) -> bytes:
        function = self._function(backend, function_name)
        event = json.loads(body) if body else {}
        record = Invocation(function.function_name, event)
        with self._lock:
            self.invocations.append(record)
        try:
            result = self._call(function, event)
        except Exception as exc:
            record.ok, record.error = False, type(exc).__name__
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
        record.result = result
        return json.dumps(result).encode()

    def _call(self, function: Any, event: Any) -> Any:
        variables = (function.environment_vars or {}) if hasattr(function, "environment_vars") else {}
        os.environ.update({k: str(v) for k, v in variables.items()})
        # What the Lambda runtime sets for every function (handlers' boto3 clients need the region).
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = function.region
        context = FakeContext(
            function_name=function.function_name,
            memory_limit_in_mb=int(function.memory_size or 128),
            timeout_seconds=int(function.timeout or 3),
            invoked_function_arn=function.function_arn,
            _deadline=time.monotonic() + int(function.timeout or 3),
        )
        return self._handler_for(function)(event, context)

    def _enqueue_stream(self, backend: Any, function_arn: str, items: list[Any], source: str) -> None:
        records = []
        for item in items:
            record = item.to_json()
            dynamodb = dict(record["dynamodb"])
            created: Any = dynamodb.get("ApproximateCreationDateTime")
            if hasattr(created, "timestamp"):
                dynamodb["ApproximateCreationDateTime"] = created.timestamp()
            records.append(
                {
                    "eventID": record["eventID"],
                    "eventName": record["eventName"],
                    "eventVersion": record["eventVersion"],
                    "eventSource": record["eventSource"],
                    "awsRegion": backend.region_name,
                    "dynamodb": dynamodb,
                    "eventSourceARN": source,
                }
            )
        self._stream_queue.put((backend, function_arn, {"Records": records}))

    def _stream_worker(self) -> None:
        while True:
            task = self._stream_queue.get()
            try:
                if task is None:
                    return
                backend, function_arn, event = task
                function = self._function(backend, function_arn)
                record = Invocation(function.function_name, event)
                with self._lock:
                    self.invocations.append(record)
                try:
                    self._call(function, event)
                except Exception:
                    record.ok = False
                    self._stream_errors.append(traceback.format_exc())
            finally:
                self._stream_queue.task_done()
