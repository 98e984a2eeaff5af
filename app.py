#!/usr/bin/env python3
"""The CDK app: one stack, ``CircuitBreaker``. Makes no AWS calls at synth time."""

import aws_cdk as cdk

from infra.stack import CircuitBreakerStack

app = cdk.App()
CircuitBreakerStack(app)
app.synth()
