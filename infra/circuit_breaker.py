"""The reusable CircuitBreaker construct: table, workflow, and the breaker's own functions.

Drop it into any CDK app::

    breaker = CircuitBreaker(
        self, "Breaker",
        services={"payment": ProtectedService(function=payment_fn)},
        settings=BreakerSettings(open_duration_seconds=60),
    )
    breaker.grant_start(api_role)

Callers start ``breaker.state_machine`` with ``{"ServiceName": "payment", "Payload": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import nag
from infra.settings import BreakerSettings, SettingsError, validate_service_name

ROOT = Path(__file__).resolve().parent.parent
DEFINITION_PATH = ROOT / "statemachine" / "circuit_breaker.asl.json"
LAMBDAS_PATH = ROOT / "lambdas"

#: Powertools for AWS Lambda (Python) v3, published by AWS as a public layer in every region.
POWERTOOLS_LAYER = "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:{version}"
DEFAULT_POWERTOOLS_LAYER_VERSION = 27
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13


@dataclass(frozen=True, kw_only=True)
class ProtectedService:
    """A service the breaker protects: the Lambda function that implements it, and its own settings.

    ``settings`` overrides the breaker-wide settings for this service only, by name
    (``{"service_timeout_seconds": 10}``).
    """

    function: lambda_.IFunction
    settings: Mapping[str, Any] = field(default_factory=dict)


class CircuitBreaker(Construct):
    """A shared circuit breaker: an Express workflow in front of registered Lambda services."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        services: Mapping[str, ProtectedService],
        settings: BreakerSettings | None = None,
        service_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        table_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_execution_data: bool = False,
        powertools_layer_version: int = DEFAULT_POWERTOOLS_LAYER_VERSION,
    ) -> None:
        """
        :param services: service name -> the function that implements it (at least one).
        :param settings: breaker-wide settings; defaults are ``BreakerSettings()``.
        :param service_overrides: per-service setting overrides (for example from CDK context),
            applied on top of each ``ProtectedService.settings``.
        :param table_name: a fixed name for the CircuitStatus table; by default CloudFormation
            names it, so that several breakers can live in one account.
        :param removal_policy: what happens to the table and log groups when the stack is deleted.
        :param log_retention: how long the workflow's and functions' logs are kept.
        :param log_execution_data: log execution input and output (payloads may hold personal data).
        :param powertools_layer_version: the version of AWS's public Powertools layer.
        """
        super().__init__(scope, construct_id)
        if not services:
            raise SettingsError("a CircuitBreaker needs at least one service")
        base = settings or BreakerSettings()
        overrides = dict(service_overrides or {})
        unknown = set(overrides) - set(services)
        if unknown:
            raise SettingsError(f"settings given for services that are not registered: {sorted(unknown)}")
        self.services = dict(services)
        self.settings_by_service: dict[str, BreakerSettings] = {
            validate_service_name(name): base.with_overrides(service.settings).with_overrides(overrides.get(name, {}))
            for name, service in sorted(services.items())
        }

        self.table = dynamodb.Table(
            self,
            "CircuitStatus",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name="ServiceName", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="ExpiryTimeStamp",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            removal_policy=removal_policy,
        )

        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            POWERTOOLS_LAYER.format(region=Stack.of(self).region, version=powertools_layer_version),
        )
        code = lambda_.Code.from_asset(
            str(LAMBDAS_PATH), exclude=["**/__pycache__", "**/*.pyc", "handlers/demo_service.py"]
        )

        def breaker_function(name: str, handler: str, description: str) -> lambda_.Function:
            log_group = logs.LogGroup(self, f"{name}Logs", retention=log_retention, removal_policy=removal_policy)
            function = lambda_.Function(
                self,
                name,
                description=description,
                runtime=LAMBDA_RUNTIME,
                architecture=lambda_.Architecture.X86_64,
                code=code,
                handler=handler,
                layers=[layer],
                memory_size=256,
                timeout=Duration.seconds(10),
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                environment={
                    "TABLE_NAME": self.table.table_name,
                    "POWERTOOLS_SERVICE_NAME": "circuit-breaker",
                    "POWERTOOLS_METRICS_NAMESPACE": "CircuitBreaker",
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                },
            )
            nag_lambda(function)
            return function

        self.record_failure_function = breaker_function(
            "RecordFailure",
            "handlers.record_failure.handler",
            "Circuit breaker: records a service's final failure, which opens its circuit",
        )
        self.table.grant(self.record_failure_function, "dynamodb:GetItem", "dynamodb:PutItem")

        self.claim_probe_function = breaker_function(
            "ClaimProbe",
            "handlers.claim_probe.handler",
            "Circuit breaker: lets one execution probe a service once its open period is over",
        )
        self.table.grant(self.claim_probe_function, "dynamodb:GetItem", "dynamodb:PutItem")

        self.stream_mirror_function = breaker_function(
            "StreamMirror",
            "handlers.stream_mirror.handler",
            "Circuit breaker: keeps OpenUntil in step with ExpiryTimeStamp and logs state changes",
        )
        self.table.grant(self.stream_mirror_function, "dynamodb:UpdateItem")
        self.stream_mirror_function.add_event_source(
            event_sources.DynamoEventSource(
                self.table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=25,
                bisect_batch_on_error=True,
                retry_attempts=10,
            )
        )

        self.log_group = logs.LogGroup(self, "WorkflowLogs", retention=log_retention, removal_policy=removal_policy)
        self.role = iam.Role(
            self,
            "WorkflowRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Circuit breaker workflow: reads and closes circuits, invokes registered services",
        )
        self.table.grant(self.role, "dynamodb:GetItem", "dynamodb:DeleteItem")
        # Exactly the ARNs the workflow invokes (no ":*" for other versions and aliases).
        invoked: list[lambda_.IFunction] = [self.record_failure_function, self.claim_probe_function]
        invoked += [service.function for service in self.services.values()]
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[function.function_arn for function in invoked]
            )
        )

        definition, substitutions = self.definition()
        self.state_machine = sfn.StateMachine(
            self,
            "Workflow",
            state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ERROR,
                include_execution_data=log_execution_data,
            ),
        )
        nag.suppress(
            self.state_machine,
            "AwsSolutions-SF1",
            "Logs ERROR events, not ALL: ALL would log every state of every protected call (cost, and "
            "payloads with personal data when execution data is on). Failed executions, fast fails "
            "included, are logged with their error and cause.",
        )
        nag.suppress(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "CloudWatch Logs delivery (logs:CreateLogDelivery and related) and X-Ray support no "
            "resource-level permissions; AWS requires Resource '*'.",
            applies_to=["Resource::*"],
        )

    def definition(self) -> tuple[str, dict[str, str]]:
        """The workflow from ``statemachine/``, with its routing filled in, and its substitutions.

        The file holds the whole flow. What depends on the registered services is added here:
        one ``RouteService`` rule and one ``Configure <service>`` Pass state per service, holding
        that service's settings; its function ARN enters through a placeholder like every other
        ARN. Everything else enters through the placeholders already in the file.
        """
        asl = json.loads(DEFINITION_PATH.read_text())
        states = asl["States"]
        substitutions: dict[str, str] = {
            "CircuitTableName": self.table.table_name,
            "RecordFailureFunctionArn": self.record_failure_function.function_arn,
            "ClaimProbeFunctionArn": self.claim_probe_function.function_arn,
            "RegisteredServices": ", ".join(self.settings_by_service),
        }
        rules = []
        for index, (name, settings) in enumerate(self.settings_by_service.items()):
            state_name = f"Configure {name}"
            placeholder = f"ServiceFunctionArn{index}"
            substitutions[placeholder] = self.services[name].function.function_arn
            rules.append({"Variable": "$.ServiceName", "StringEquals": name, "Next": state_name})
            states[state_name] = {
                "Type": "Pass",
                "Comment": f"Settings of service '{name}'",
                "Result": service_config(settings, function_arn=f"${{{placeholder}}}"),
                "ResultPath": "$.Service",
                "Next": "GetCircuitStatus",
            }
        states["RouteService"]["Choices"] = rules
        return json.dumps(asl, indent=2), substitutions

    def grant_start(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start the workflow, synchronously (``StartSyncExecution``) or not."""
        return self.state_machine.grant(grantee, "states:StartSyncExecution", "states:StartExecution")

    def grant_operate(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read and write circuits (what the ``breaker`` CLI does)."""
        return self.table.grant(
            grantee,
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Scan",
        )


def nag_lambda(function: lambda_.Function) -> None:
    """The cdk-nag findings every Lambda function here shares, suppressed with their reasons."""
    nag.suppress(function, "AwsSolutions-L1", nag.RUNTIME_REASON)
    role = function.role
    if role is not None:
        nag.suppress(
            role,
            "AwsSolutions-IAM4",
            nag.BASIC_EXECUTION_REASON,
            applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        )
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            nag.suppress(policy, "AwsSolutions-IAM5", nag.XRAY_REASON, applies_to=["Resource::*"])


def service_config(settings: BreakerSettings, *, function_arn: str) -> dict[str, Any]:
    """What the workflow needs to know about one service, as it sees it under ``$.Service``."""
    return {
        "FunctionArn": function_arn,
        "TimeoutSeconds": settings.service_timeout_seconds,
        "Retries": settings.max_attempts - 1,
        "RetryDelaysSeconds": settings.retry_delays(),
        "StoreFaultPolicy": settings.store_fault_policy.upper(),
        "Policy": {
            "OpenDurationSeconds": settings.open_duration_seconds,
            "FailureThreshold": settings.failure_threshold,
            "FailureWindowSeconds": settings.failure_window_seconds,
            "HalfOpenProbes": settings.half_open_probes,
            # A probe's claim outlives its execution's worst case, then lapses on its own.
            "ProbeLeaseSeconds": settings.worst_case_seconds() + 5,
            "OpenDurationGrowth": settings.open_duration_growth,
            "MaxOpenDurationSeconds": settings.max_open_duration_seconds,
        },
    }
