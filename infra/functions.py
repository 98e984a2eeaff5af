"""The breaker's own Lambda functions: RecordFailure, ClaimProbe and StreamMirror.

None of them runs on the hot path: the workflow reads the table itself. Each gets exactly the
table actions it needs, its own log group, X-Ray tracing, and AWS's public Powertools layer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from sfn_breaker.core.model import READ_SHARDS_RESOURCE_TYPE, SHARD_SEPARATOR

from . import assets, nag
from .table import KEY_WRITE_ACTIONS

#: Powertools for AWS Lambda (Python) v3, published by AWS as a public layer in every region.
POWERTOOLS_LAYER = "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:{version}"
DEFAULT_POWERTOOLS_LAYER_VERSION = 27
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
#: The CloudWatch namespace of the functions' metrics, and the ``service`` of their log lines.
METRICS_NAMESPACE = "CircuitBreaker"
LOG_SERVICE_NAME = "circuit-breaker"
#: Set by `cdk synth --no-staging` (as SAM does): assets are then used where they are.
DISABLE_ASSET_STAGING_CONTEXT = "aws:cdk:disable-asset-staging"


class BreakerFunctions(Construct):
    """Exposes ``record_failure``, ``claim_probe`` and ``stream_mirror``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        powertools_layer_version: int = DEFAULT_POWERTOOLS_LAYER_VERSION,
        encryption_key: kms.IKey | None = None,
        metrics_namespace: str = METRICS_NAMESPACE,
        read_shards: Mapping[str, int] | None = None,
    ) -> None:
        """
        :param encryption_key: the table's customer-managed key, if any: each function may use it
            to read and write items (and StreamMirror to read the stream), nothing more.
        :param metrics_namespace: the CloudWatch namespace of the functions' EMF metrics.
        :param read_shards: each service with read shards (more than 1) and how many: StreamMirror
            keeps them in step with the base item, and may write and delete items for that.
        """
        super().__init__(scope, construct_id)
        self._table = table
        self._metrics_namespace = metrics_namespace
        self._removal_policy = removal_policy
        self._log_retention = log_retention
        self._layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            POWERTOOLS_LAYER.format(region=Stack.of(self).region, version=powertools_layer_version),
        )
        staging_disabled = bool(self.node.try_get_context(DISABLE_ASSET_STAGING_CONTEXT))
        self._code = lambda_.Code.from_asset(str(assets.function_code(keep=staging_disabled)))

        self.record_failure = self._function(
            "RecordFailure",
            "sfn_breaker.lambdas.record_failure.handler",
            "Circuit breaker: records a service's final failure, which opens its circuit",
        )
        table.grant(self.record_failure, "dynamodb:GetItem", "dynamodb:PutItem")

        self.claim_probe = self._function(
            "ClaimProbe",
            "sfn_breaker.lambdas.claim_probe.handler",
            "Circuit breaker: lets one execution probe a service once its open period is over",
        )
        table.grant(self.claim_probe, "dynamodb:GetItem", "dynamodb:PutItem")

        self.stream_mirror = self._function(
            "StreamMirror",
            "sfn_breaker.lambdas.stream_mirror.handler",
            "Circuit breaker: keeps OpenUntil in step with ExpiryTimeStamp and logs state changes",
        )
        table.grant(self.stream_mirror, "dynamodb:UpdateItem")
        # Always set (``{}``: none), so that no value is ever inherited where functions share an
        # environment (the emulator runs every function in one process).
        shards_setting = json.dumps(dict(sorted((read_shards or {}).items())))
        self.stream_mirror.add_environment("READ_SHARDS", shards_setting)
        # Read shards: StreamMirror writes and deletes them, and on deploy reads every base item
        # and lists the table to delete shards no call reads. Granted with no shards too: turning
        # sharding off must delete the shards left. Writes are limited to shard keys (``payment#3``).
        table.grant(self.stream_mirror, "dynamodb:GetItem", "dynamodb:Scan")
        self.stream_mirror.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
                resources=[table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"*{SHARD_SEPARATOR}*"]}},
            )
        )
        self.stream_mirror.add_event_source(
            event_sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=25,
                bisect_batch_on_error=True,
                retry_attempts=10,
            )
        )
        if encryption_key is not None:
            for function in (self.record_failure, self.claim_probe, self.stream_mirror):
                encryption_key.grant(function, *KEY_WRITE_ACTIONS)
        # On deploy, and again whenever READ_SHARDS changes (the resource's only property),
        # CloudFormation asks StreamMirror to bring every read shard in step with its base item.
        self.read_shards_in_step = CustomResource(
            self,
            "ReadShardsInStep",
            service_token=self.stream_mirror.function_arn,
            resource_type=READ_SHARDS_RESOURCE_TYPE,
            properties={"ReadShards": shards_setting},
            removal_policy=RemovalPolicy.DESTROY,
        )
        # After its grants (the role's policy) and after the stream's mapping: a write before the
        # mapping reads the stream is one the resync sees, a write after it one the stream brings.
        if self.stream_mirror.role is not None:
            self.read_shards_in_step.node.add_dependency(self.stream_mirror.role)
        for child in self.stream_mirror.node.children:
            if isinstance(child, lambda_.EventSourceMapping):
                self.read_shards_in_step.node.add_dependency(child)

    def _function(self, name: str, handler: str, description: str) -> lambda_.Function:
        log_group = logs.LogGroup(
            self, f"{name}Logs", retention=self._log_retention, removal_policy=self._removal_policy
        )
        function = lambda_.Function(
            self,
            name,
            description=description,
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=self._code,
            handler=handler,
            layers=[self._layer],
            memory_size=256,
            timeout=Duration.seconds(10),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                "TABLE_NAME": self._table.table_name,
                "POWERTOOLS_SERVICE_NAME": LOG_SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": self._metrics_namespace,
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )
        nag_lambda(function)
        return function


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
