"""The outage benchmark: one outage, four ways to live through it.

``python -m bench.outage`` (or ``make bench``) runs the same scenario against four strategies,
each executing its real code on the embedded emulator (moto, in this process):

- ``no breaker``: callers call the service directly, with this project's default timeout and
  retries (``strategies.NoBreaker``);
- ``reference design``: the AWS sample behind Prescriptive Guidance's circuit-breaker pattern
  (``bench.reference_design``);
- ``Powertools``: Powertools for AWS Lambda's ``circuit_breaker`` utility with DynamoDB
  persistence, one execution environment per caller (``powertools.Powertools``);
- ``this project``: the synthesized demo stack's workflow through the real ``BreakerClient``,
  with the client's defaults.

Modules: ``settings`` (the scenario and the scale factor), ``service`` (the service on a
schedule), ``counting`` (AWS operations from the emulator's records), ``base``, ``strategies``
and ``powertools`` (the four strategies), ``run`` (callers and the watcher), ``operations`` (one
closed and one open call, counted), ``pricing``, ``report`` (the Markdown table and the chart),
``__main__`` (the command).
"""
