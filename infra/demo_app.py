"""The demo CDK app: one stack, ``CircuitBreaker``. Makes no AWS calls at synth time.

``app.py`` at the top of the repository runs ``main()``, and so does ``breaker local up``
(``python -m sfn_breaker.cdk.demo_app``) from any folder, with no checkout: the same app,
the same template. CDK context from ``cdk.json``, ``-c`` or ``CDK_CONTEXT_JSON`` overrides
``DEFAULT_CONTEXT`` key by key.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from .demo_stack import DemoStack

#: The CDK feature flags the demo app is built with (in code, so that every way of running it
#: produces the same template). The breaker's settings default to ``BreakerSettings()``.
DEFAULT_CONTEXT: dict[str, Any] = {
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:target-partitions": ["aws", "aws-cn"],
}


def build() -> cdk.App:
    app = cdk.App(context=DEFAULT_CONTEXT)
    DemoStack(app)
    return app


def main() -> None:
    build().synth()


if __name__ == "__main__":
    main()
