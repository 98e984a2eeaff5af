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
from .feature_flags import RECOMMENDED_FEATURE_FLAGS

#: The CDK context the demo app is built with: the feature flags ``cdk init`` writes (in code, so
#: that every way of running it produces the same template, and ``cdk synth`` has no flag to warn
#: about). The breaker's settings default to ``BreakerSettings()``.
DEFAULT_CONTEXT: dict[str, Any] = dict(RECOMMENDED_FEATURE_FLAGS)


def build() -> cdk.App:
    app = cdk.App(context=DEFAULT_CONTEXT)
    DemoStack(app)
    return app


def main() -> None:
    build().synth()


if __name__ == "__main__":
    main()
