"""The AWS reference design, as a baseline: aws-samples/circuit-breaker-netcore-blog.

The sample behind AWS Prescriptive Guidance's circuit-breaker pattern (MIT-0), read at commit
5dda070b832128c21812c23f3f09d9c7ac16c660 (2023-10-17). What is here:

- ``circuitbreaker.asl.json``: its state machine definition, byte for byte as published
  (``circuit-breaker/statemachine/circuitbreaker.asl.json``, JSONPath).
- ``functions.py``: its two Lambda functions, ported from .NET to Python line by line
  (``GetCircuitStatusLambda`` and ``UpdateCircuitStatusLambda``).
- ``deploy.py``: its table, functions and state machine, created in the embedded emulator.

Where the sample had to be interpreted (each one is listed in the README's Benchmarks section):

1. **Workflow type.** Both of its deployments create a STANDARD workflow (SAM's default, and
   ``StateMachineType.STANDARD`` in its CDK stack), so it is priced per state transition, and a
   caller starts an execution and polls ``DescribeExecution`` for its end (a Standard workflow
   has no ``StartSyncExecution``).
2. **Shared settings.** ``Execute Lambda``'s ``TimeoutSeconds`` (12 s as published) and the
   open period (``EXPIRE_SECONDS = 20`` in ``UpdateCircuitStatus``) are replaced by the one
   timeout and open period every strategy uses; its retry policy is kept as published
   (``MaxAttempts: 3``, ``IntervalSeconds: 2``, ``BackoffRate: 1.5``). Only the resource ARNs
   are substituted in the definition otherwise.
3. **The table.** Its own: ``ServiceName`` (hash) and ``ExpireTimeStamp`` (range, Number, the
   TTL attribute), named ``CircuitBreaker`` as its code hard-codes. It is provisioned at 5/5
   in the sample; the cost table prices every strategy's requests on demand, to compare designs
   rather than capacity plans.
4. **Functions.** Python instead of .NET 6, 256 MB and 30 s as in its SAM template. Its
   ``DynamoDBContext`` reads with ``ConsistentRead = true``; ``SaveAsync`` writes one item.
5. **The service's input.** ``Execute Lambda`` passes no ``Payload`` (its ``Parameters`` hold
   only ``FunctionName.$``), so the service is invoked with an empty event, as published.
6. **Outcomes.** Its ``Circuit Open`` Fail state names no error and ends both a fast fail and a
   failed call (after ``Update Circuit Status``), so the benchmark tells them apart by the
   execution's history: whether ``Execute Lambda`` ran. Callers poll every 20 ms.
7. **Opening it for the operation count.** The benchmark opens its circuit by invoking
   ``UpdateCircuitStatus`` as its workflow does after a failed execution, instead of waiting out
   a failed execution's 9.5 s of retries; ``SaveAsync`` is ported as one ``PutItem``.
"""
