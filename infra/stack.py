"""The ``CircuitBreaker`` stack: the breaker construct with one demo service, ``payment``."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.circuit_breaker import LAMBDA_RUNTIME, LAMBDAS_PATH, CircuitBreaker, ProtectedService, nag_lambda
from infra.settings import CONTEXT_KEY, settings_from_context

STACK_NAME = "CircuitBreaker"
DEMO_SERVICE = "payment"


class CircuitBreakerStack(Stack):
    def __init__(self, scope: Construct, construct_id: str = STACK_NAME, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings, overrides = settings_from_context(self.node.try_get_context(CONTEXT_KEY))

        demo_logs = logs.LogGroup(
            self,
            "DemoServiceLogs",
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.demo_function = lambda_.Function(
            self,
            "DemoService",
            description="Circuit breaker demo: a payment service steered by its payload (ok, slow, fail)",
            runtime=LAMBDA_RUNTIME,
            code=lambda_.Code.from_asset(str(LAMBDAS_PATH / "handlers"), exclude=["*", "!demo_service.py"]),
            handler="demo_service.handler",
            memory_size=128,
            timeout=Duration.seconds(30),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=demo_logs,
        )

        nag_lambda(self.demo_function)

        self.breaker = CircuitBreaker(
            self,
            "Breaker",
            services={DEMO_SERVICE: ProtectedService(function=self.demo_function)},
            settings=settings,
            service_overrides=overrides,
            # The demo's circuits are disposable; a production stack keeps the default (RETAIN).
            removal_policy=RemovalPolicy.DESTROY,
        )

        CfnOutput(self, "StateMachineArn", value=self.breaker.state_machine.state_machine_arn)
        CfnOutput(self, "TableName", value=self.breaker.table.table_name)
        CfnOutput(self, "DemoServiceFunctionName", value=self.demo_function.function_name)
