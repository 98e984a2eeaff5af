#!/usr/bin/env python3
"""The CDK app of this repository: the demo stack, ``CircuitBreaker`` (``sfn_breaker.cdk.demo_app``).

``cdk synth`` and ``cdk deploy`` run it with ``cdk.json``'s context. Makes no AWS calls at synth time.
"""

from sfn_breaker.cdk.demo_app import main

main()
