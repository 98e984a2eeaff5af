"""The workflow definition, ``circuit_breaker.asl.json``: package data of ``circuit_breaker.statemachine``.

The CDK construct reads it with ``importlib.resources``, from a checkout and from an installed
wheel alike (see ``circuit_breaker.cdk.assets``).
"""
