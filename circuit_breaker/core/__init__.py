"""The breaker's rules and its table format, shared by the Lambdas, the CLI and the client.

Nothing in this package imports boto3 at module level except ``store``: the rules are pure
functions over plain values, tested without mocks.
"""
