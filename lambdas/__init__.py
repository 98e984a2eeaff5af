"""The breaker's Lambda functions (installed as ``sfn_breaker.lambdas``).

Each handler parses its input, calls the pure rules in ``sfn_breaker.core`` and writes
through ``sfn_breaker.core.store``. The construct deploys them with exactly the code they
import: this package (without the demo service), ``sfn_breaker.core`` and the package's
``__init__`` (see ``sfn_breaker.cdk.assets``). ``demo_service`` is the demo stack's
``payment`` service, deployed on its own.
"""
