"""The workflow definition, ``circuit_breaker.asl.json``: package data of ``sfn_breaker.statemachine``.

The CDK construct reads it with ``importlib.resources``, from a checkout and from an installed
wheel alike (see ``sfn_breaker.cdk.assets``).
"""
