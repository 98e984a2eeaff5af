"""The breaker's rules and its table format, shared by the Lambdas, the CLI and the client.

- ``model``: the CircuitStatus item's format (the operators' contract) and what a caller sees.
- ``reading``: reading an item: its expiry, the ``OpenUntil`` mirror, the state a caller finds.
- ``transitions``: the rules that change a circuit: what opens it, who probes, what closes it.
- ``store``: every DynamoDB call, with conditional writes.

Nothing here imports boto3 at module level except ``store``: the rules are pure functions over
plain values, tested without mocks.
"""
