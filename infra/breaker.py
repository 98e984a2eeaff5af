"""The reusable CircuitBreaker construct: the table, the breaker's functions and the workflow.

Drop it into any CDK app::

    from sfn_breaker.cdk import BreakerSettings, CircuitBreaker, ProtectedService

    breaker = CircuitBreaker(
        self, "Breaker",
        services={"payment": ProtectedService(function=payment_fn)},
        settings=BreakerSettings(open_duration_seconds=60),
    )
    breaker.grant_start(api_role)

Callers start ``breaker.state_machine`` with ``{"ServiceName": "payment", "Payload": {...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from .functions import DEFAULT_POWERTOOLS_LAYER_VERSION, METRICS_NAMESPACE, BreakerFunctions
from .monitoring import BreakerMonitoring
from .settings import BreakerSettings, SettingsError, validate_service_name
from .table import KEY_READ_ACTIONS, CircuitStatusTable
from .workflow import BreakerWorkflow


@dataclass(frozen=True, kw_only=True)
class ProtectedService:
    """A service the breaker protects: the Lambda function that implements it, and its own settings.

    ``settings`` overrides the breaker-wide settings for this service only, by name
    (``{"service_timeout_seconds": 10}`` or ``{"serviceTimeoutSeconds": 10}``).
    ``fallback`` answers in the service's place while its circuit is open (and after a call that
    failed on every attempt, with the setting ``fallback_on_failure``); it receives
    ``{"ServiceName", "Payload", "Reason": {"Error", "Cause"}}`` and its answer is the call's.
    A service has a fallback function or a static ``fallback_response`` setting, not both.
    """

    function: lambda_.IFunction
    settings: Mapping[str, Any] = field(default_factory=dict)
    fallback: lambda_.IFunction | None = None


class CircuitBreaker(Construct):
    """A shared circuit breaker: an Express workflow in front of registered Lambda services.

    Exposes ``table``, ``state_machine``, the workflow's ``role``, ``workflow_policy`` (its grants:
    the table and the functions it invokes) and ``log_group``, the breaker's
    functions (``record_failure_function``, ``claim_probe_function``, ``stream_mirror_function``),
    ``settings_by_service``: the settings each service ends up with, and its monitoring:
    ``alarms`` (every alarm), ``circuit_open_alarms`` (by service), ``dashboard`` and
    ``monitoring`` (the ``BreakerMonitoring``, with ``metric_filters`` and ``metrics``), all empty
    or ``None`` when switched off.
    """

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
        table_deletion_protection: bool = True,
        encryption_key: kms.IKey | None = None,
        monitoring: bool = True,
        alarms: bool = True,
        dashboard: bool = True,
        dashboard_name: str | None = None,
        alarm_topic: sns.ITopic | None = None,
        alarm_actions: Sequence[cloudwatch.IAlarmAction] = (),
        metrics_namespace: str = METRICS_NAMESPACE,
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
        :param table_deletion_protection: DynamoDB refuses to delete the table until this is off
            (turn it off for stacks you mean to destroy: tests, demos).
        :param encryption_key: a customer-managed KMS key for the table (and its stream); by default
            the AWS-managed key. The workflow and the functions get only the key actions they need.
        :param monitoring: the workflow's metric filters, the alarms and the dashboard; ``False``
            creates none of them.
        :param alarms: the alarms (with ``monitoring``).
        :param dashboard: the dashboard (with ``monitoring``).
        :param dashboard_name: the dashboard's name; by default CloudFormation names it.
        :param alarm_topic: an SNS topic told when any alarm fires and when it clears.
        :param alarm_actions: more actions for every alarm (also on clearing).
        :param metrics_namespace: the CloudWatch namespace of the breaker's metrics; give each
            breaker its own when several share an account and region.
        """
        super().__init__(scope, construct_id)
        self.services = dict(services)
        self.settings_by_service = resolve_settings(services, settings or BreakerSettings(), service_overrides or {})

        self.table = CircuitStatusTable(
            self,
            "CircuitStatus",
            table_name=table_name,
            removal_policy=removal_policy,
            deletion_protection=table_deletion_protection,
            encryption_key=encryption_key,
        ).table
        functions = BreakerFunctions(
            self,
            "Functions",
            table=self.table,
            removal_policy=removal_policy,
            log_retention=log_retention,
            powertools_layer_version=powertools_layer_version,
            encryption_key=encryption_key,
            metrics_namespace=metrics_namespace,
            read_shards={name: s.read_shards for name, s in self.settings_by_service.items() if s.read_shards > 1},
        )
        self.record_failure_function = functions.record_failure
        self.claim_probe_function = functions.claim_probe
        self.stream_mirror_function = functions.stream_mirror
        workflow = BreakerWorkflow(
            self,
            "Workflow",
            table=self.table,
            record_failure=functions.record_failure,
            claim_probe=functions.claim_probe,
            services={name: (self.services[name].function, s) for name, s in self.settings_by_service.items()},
            fallbacks={name: service.fallback for name, service in self.services.items() if service.fallback},
            removal_policy=removal_policy,
            log_retention=log_retention,
            log_execution_data=log_execution_data,
        )
        self.state_machine = workflow.state_machine
        self.role = workflow.role
        self.workflow_policy = workflow.policy
        self.log_group = workflow.log_group
        if encryption_key is not None:
            # The workflow reads circuits (GetItem) and closes them with a conditional DeleteItem,
            # which reads the item too: decrypt only. A policy of its own, like its other grants.
            key_policy = iam.Policy(
                self,
                "WorkflowKeyGrants",
                roles=[self.role],
                statements=[iam.PolicyStatement(actions=list(KEY_READ_ACTIONS), resources=[encryption_key.key_arn])],
            )
            self.state_machine.node.add_dependency(key_policy)

        actions = list(alarm_actions)
        if alarm_topic is not None:
            actions.append(cloudwatch_actions.SnsAction(alarm_topic))
        self.monitoring: BreakerMonitoring | None = None
        if monitoring:
            self.monitoring = BreakerMonitoring(
                self,
                "Monitoring",
                services={name: self.services[name].function for name in self.settings_by_service},
                state_machine=self.state_machine,
                log_group=self.log_group,
                breaker_functions={
                    "RecordFailure": self.record_failure_function,
                    "ClaimProbe": self.claim_probe_function,
                    "StreamMirror": self.stream_mirror_function,
                },
                stream_mirror=self.stream_mirror_function,
                namespace=metrics_namespace,
                alarms=alarms,
                dashboard=dashboard,
                dashboard_name=dashboard_name,
                alarm_actions=actions,
            )
        self.alarms: list[cloudwatch.Alarm] = list(self.monitoring.alarms) if self.monitoring else []
        self.circuit_open_alarms: dict[str, cloudwatch.Alarm] = (
            dict(self.monitoring.circuit_open_alarms) if self.monitoring else {}
        )
        self.dashboard: cloudwatch.Dashboard | None = self.monitoring.dashboard if self.monitoring else None

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


def resolve_settings(
    services: Mapping[str, ProtectedService],
    base: BreakerSettings,
    overrides: Mapping[str, Mapping[str, Any]],
) -> dict[str, BreakerSettings]:
    """Each service's settings: ``base``, then its ``ProtectedService.settings``, then ``overrides``."""
    if not services:
        raise SettingsError("a CircuitBreaker needs at least one service")
    unknown = set(overrides) - set(services)
    if unknown:
        raise SettingsError(f"settings given for services that are not registered: {sorted(unknown)}")
    return {
        validate_service_name(name): base.with_overrides(service.settings).with_overrides(overrides.get(name, {}))
        for name, service in sorted(services.items())
    }
