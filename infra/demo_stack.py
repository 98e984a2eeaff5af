"""The demo stack, ``CircuitBreaker``: the breaker construct with one demo service, ``payment``.

This is what ``cdk deploy`` deploys from this repository, and what ``breaker local up`` and
``breaker demo`` deploy into the embedded emulator (``sfn_breaker.cdk.demo_app``).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from sfn_breaker.contract import (
    DEFAULT_STACK_NAME,
    DEMO_SERVICE,
    DEMO_SERVICE_OUTPUT,
    STATE_MACHINE_OUTPUT,
    TABLE_OUTPUT,
)

from . import assets
from .breaker import CircuitBreaker, ProtectedService
from .functions import LAMBDA_RUNTIME, nag_lambda
from .settings import CONTEXT_KEY, settings_from_context

#: A declined card or a request the demo does not understand is the caller's problem: such an
#: answer ends the call at once and never counts against the service (context may override it).
DEMO_SERVICE_SETTINGS = {"ignoredErrors": ["PaymentDeclined", "InvalidDemoRequest"]}


class DemoStack(Stack):
    """The breaker, its settings from CDK context ``circuit-breaker``, and the ``payment`` service."""

    def __init__(self, scope: Construct, construct_id: str = DEFAULT_STACK_NAME, **kwargs: Any) -> None:
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
            description="Circuit breaker demo: a payment service steered by its payload (ok, slow, fail, decline)",
            runtime=LAMBDA_RUNTIME,
            code=lambda_.Code.from_asset(str(assets.demo_service_code())),
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
            services={DEMO_SERVICE: ProtectedService(function=self.demo_function, settings=DEMO_SERVICE_SETTINGS)},
            settings=settings,
            service_overrides=overrides,
            # The demo's circuits are disposable, and `cdk destroy` must be able to remove them: a
            # production stack keeps the defaults (RETAIN, and deletion protection on).
            removal_policy=RemovalPolicy.DESTROY,
            table_deletion_protection=False,
        )

        CfnOutput(self, STATE_MACHINE_OUTPUT, value=self.breaker.state_machine.state_machine_arn)
        CfnOutput(self, TABLE_OUTPUT, value=self.breaker.table.table_name)
        CfnOutput(self, DEMO_SERVICE_OUTPUT, value=self.demo_function.function_name)
