"""The Express workflow: ``statemachine/circuit_breaker.asl.json`` with the registered services routed in.

The file holds the whole flow. What depends on the registered services is added here: one
``RouteService`` rule and one ``Configure <service>`` Pass state per service, holding that
service's settings; its function ARN enters through a placeholder like every other ARN.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Set
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from sfn_breaker.core.model import shard_keys

from . import assets, nag
from .settings import BreakerSettings, SettingsError

#: A probe's claim outlives its execution's worst case by this much, then lapses on its own.
PROBE_LEASE_MARGIN_SECONDS = 5


class BreakerWorkflow(Construct):
    """Exposes ``state_machine``, its ``role`` (with ``policy``, the workflow's own grants) and its ``log_group``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        record_failure: lambda_.IFunction,
        claim_probe: lambda_.IFunction,
        services: Mapping[str, tuple[lambda_.IFunction, BreakerSettings]],
        fallbacks: Mapping[str, lambda_.IFunction] | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_execution_data: bool = False,
    ) -> None:
        """
        :param services: service name -> (the function that implements it, its settings).
        :param fallbacks: service name -> the function that answers in its place (some services).
        """
        super().__init__(scope, construct_id)
        fallbacks = dict(fallbacks or {})
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Circuit breaker workflow: reads and closes circuits, invokes registered services",
        )
        # The workflow's own grants live in a policy of their own, never suppressed, so that cdk-nag
        # flags any wildcard here. The role's default policy holds only what CDK adds for log
        # delivery and X-Ray, which AWS grants on "*" alone (suppressed below, with the reason).
        invoked = [
            record_failure,
            claim_probe,
            *(function for function, _ in services.values()),
            *fallbacks.values(),
        ]
        self.policy = iam.Policy(
            self,
            "Grants",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    resources=[table.table_arn],
                ),
                # Exactly the ARNs the workflow invokes (no ":*" for other versions and aliases).
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[function.function_arn for function in invoked]
                ),
            ],
        )

        definition, placeholders = routed_definition(
            {name: settings for name, (_, settings) in services.items()}, with_fallback_function=set(fallbacks)
        )
        substitutions = {
            "CircuitTableName": table.table_name,
            "RecordFailureFunctionArn": record_failure.function_arn,
            "ClaimProbeFunctionArn": claim_probe.function_arn,
            "RegisteredServices": ", ".join(services),
        }
        for name, placeholder in placeholders.items():
            substitutions[placeholder] = services[name][0].function_arn
            if name in fallbacks:
                substitutions[fallback_placeholder(placeholder)] = fallbacks[name].function_arn
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
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
        self.state_machine.node.add_dependency(self.policy)  # its grants are in place before it runs
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


def routed_definition(
    settings_by_service: Mapping[str, BreakerSettings], *, with_fallback_function: Set[str] = frozenset()
) -> tuple[str, dict[str, str]]:
    """The workflow file with the services routed in, and each service's function-ARN placeholder
    (a service in ``with_fallback_function`` also has ``fallback_placeholder`` of it)."""
    asl = json.loads(assets.workflow_definition())
    states = asl["States"]
    placeholders: dict[str, str] = {}
    rules = []
    for index, (name, settings) in enumerate(settings_by_service.items()):
        state_name = f"Configure {name}"
        placeholders[name] = f"ServiceFunctionArn{index}"
        fallback_arn = f"${{{fallback_placeholder(placeholders[name])}}}" if name in with_fallback_function else None
        rules.append({"Variable": "$.ServiceName", "StringEquals": name, "Next": state_name})
        states[state_name] = {
            "Type": "Pass",
            "Comment": f"Settings of service '{name}'",
            "Result": service_config(
                settings, function_arn=f"${{{placeholders[name]}}}", fallback_arn=fallback_arn, service=name
            ),
            "ResultPath": "$.Service",
            "Next": "GetCircuitStatus",
        }
    states["RouteService"]["Choices"] = [*states["RouteService"]["Choices"], *rules]
    return json.dumps(asl, indent=2), placeholders


def fallback_placeholder(service_placeholder: str) -> str:
    return f"Fallback{service_placeholder}"


def circuit_keys(read_shards: int, *, service: str) -> list[str]:
    """The keys GetCircuitStatus picks from with ``States.MathRandom(0, ReadShards)``: the circuit's
    items (``shard_keys``), then the base item once more, so that an index of ``ReadShards`` is
    valid whether the draw's end is inclusive (moto draws with ``randint``) or exclusive."""
    keys = shard_keys(service, read_shards)
    return [*keys, keys[0]]


def service_config(
    settings: BreakerSettings, *, function_arn: str, fallback_arn: str | None = None, service: str
) -> dict[str, Any]:
    """What the workflow needs to know about one service, as it sees it under ``$.Service``."""
    if fallback_arn is not None and settings.fallback_response is not None:
        raise SettingsError("a service has either a fallback function or a fallback_response, not both")
    fallback: dict[str, Any] = {"Kind": "none", "OnFailure": settings.fallback_on_failure}
    if fallback_arn is not None:
        fallback.update(Kind="function", FunctionArn=fallback_arn)
    elif settings.fallback_response is not None:
        fallback.update(Kind="response", Response=settings.fallback_response)
    return {
        "FunctionArn": function_arn,
        "TimeoutSeconds": settings.service_timeout_seconds,
        "Retries": settings.max_attempts - 1,
        "RetryDelaysSeconds": settings.retry_delays(),
        "StoreFaultPolicy": settings.store_fault_policy.upper(),
        "ReadShards": settings.read_shards,
        "CircuitKeys": circuit_keys(settings.read_shards, service=service),
        "IgnoredErrors": list(settings.ignored_errors),
        "Fallback": fallback,
        "Policy": {
            "OpenDurationSeconds": settings.open_duration_seconds,
            "FailureThreshold": settings.failure_threshold,
            "FailureWindowSeconds": settings.failure_window_seconds,
            "HalfOpenProbes": settings.half_open_probes,
            "ProbeLeaseSeconds": settings.worst_case_seconds() + PROBE_LEASE_MARGIN_SECONDS,
            "OpenDurationGrowth": settings.open_duration_growth,
            "MaxOpenDurationSeconds": settings.max_open_duration_seconds,
            "SuccessThreshold": settings.success_threshold,
            "SlowStartSeconds": settings.slow_start_seconds,
            "FailedAttemptsThreshold": settings.failed_attempts_threshold,
        },
    }
