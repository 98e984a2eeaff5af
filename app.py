#!/usr/bin/env python3
"""The CDK app of this repository: the demo stack, ``CircuitBreaker`` (``circuit_breaker.cdk.demo_app``).

``cdk synth`` and ``cdk deploy`` run it with ``cdk.json``'s context. Makes no AWS calls at synth time.
"""

from circuit_breaker.cdk.demo_app import main

main()
