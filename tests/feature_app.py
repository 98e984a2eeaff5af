"""A CDK app for the workflow tests of per-service features: one breaker, one service per feature.

Synthesized like the demo app (``python -m tests.feature_app`` with ``CDK_OUTDIR``), so the tests
run the very definition the construct produces for each setting. The services' functions are
placeholders: the tests stand in for each one by its construct id.
"""

from __future__ import annotations

from aws_cdk import App, CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_

from sfn_breaker.cdk import BreakerSettings, CircuitBreaker, ProtectedService
from sfn_breaker.cdk.demo_app import DEFAULT_CONTEXT
from sfn_breaker.contract import DEMO_SERVICE_OUTPUT, STATE_MACHINE_OUTPUT, TABLE_OUTPUT

STACK_NAME = "BreakerFeatures"
#: The static fallback answer of service ``static``.
STATIC_FALLBACK = {"status": "queued", "fallback": True}

#: service name -> (construct id of its function, its settings)
SERVICES = {
    "declines": ("DeclinesService", {"ignoredErrors": ["PaymentDeclined", "CardExpired"]}),
    "static": ("StaticService", {"fallbackResponse": STATIC_FALLBACK, "fallbackOnFailure": True}),
    "function": ("FunctionService", {}),
    "steady": ("SteadyService", {"successThreshold": 2, "ignoredErrors": ["PaymentDeclined"]}),
    "ramping": ("RampingService", {"slowStartSeconds": 20}),
    # Room for a test to hold a probe inside the service while other calls arrive.
    "window": ("WindowService", {"serviceTimeoutSeconds": 20}),
}
FALLBACK_FUNCTION = "FunctionFallback"


def build() -> App:
    app = App(context=DEFAULT_CONTEXT)
    stack = Stack(app, STACK_NAME)

    def placeholder(construct_id: str) -> lambda_.Function:
        return lambda_.Function(
            stack,
            construct_id,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
        )

    functions = {name: placeholder(construct_id) for name, (construct_id, _) in SERVICES.items()}
    services = {
        name: ProtectedService(function=functions[name], settings=settings) for name, (_, settings) in SERVICES.items()
    }
    services["function"] = ProtectedService(function=functions["function"], fallback=placeholder(FALLBACK_FUNCTION))
    breaker = CircuitBreaker(
        stack,
        "Breaker",
        services=services,
        # Fast settings, as the other workflow tests use: no waits between attempts, 1 s timeout.
        settings=BreakerSettings(service_timeout_seconds=1, retry_interval_seconds=0, max_attempts=3),
    )
    CfnOutput(stack, STATE_MACHINE_OUTPUT, value=breaker.state_machine.state_machine_arn)
    CfnOutput(stack, TABLE_OUTPUT, value=breaker.table.table_name)
    CfnOutput(stack, DEMO_SERVICE_OUTPUT, value=functions["declines"].function_name)
    return app


if __name__ == "__main__":
    build().synth()
