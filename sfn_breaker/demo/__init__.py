"""``breaker demo``: the cascading-failure story, played against the breaker.

The story: the ``payment`` service answers in about 100 ms, then goes down (it hangs for 5 s,
past the breaker's timeout, or fails outright), then recovers. Several callers call it all the
while. The first failures open the circuit; while it is open, callers fail fast and the service
is left alone; when the open period ends, calls reach the service again, and after recovery the
first success closes the circuit.

How the run is measured, and by whom:

- **Calls** are made by ``callers`` threads through ``BreakerClient.call``, the same client and
  code path a user has, against AWS and against the emulator alike. Each call's payload is
  chosen by the story's phase the call starts in; its outcome is what the client raised or
  returned.
- **The circuit** is watched by one thread that polls ``BreakerClient.status`` (the table) and
  records every transition of its state.
- **Calls that reached the service** are never the callers' guess. They come from the
  platform's own records, read after the run: on the in-process emulator, its record of
  invocations of the payment function *and* the execution histories (``TaskScheduled`` events
  for the function's ARN), which must agree; on an emulator at an endpoint, the histories; on
  AWS, where an Express workflow keeps no history to query, the payment function's own log
  (one ``START`` line per invocation).

Measuring and printing are separate: the threads only record, and hand events to the calling
thread, which prints them (``TimelinePrinter``); ``summarize`` turns the records into the
numbers of ``DemoSummary``; ``summary_table`` and ``sfn_breaker.demo.chart`` present them.

**Why threads and the synchronous client.** A caller of the breaker is most often a request
handler that blocks on the call, and that is exactly what a thread running ``client.call``
does, with the client users will use. boto3 is synchronous (``AsyncBreakerClient`` runs the
same calls on a thread pool anyway), eight callers are far from any thread limit, and a caller
spends its time waiting for the workflow's answer, not computing. On the in-process emulator
the pace is set by moto, which shares this process and its CPU (it parses the workflow
definition for every execution): threads or asyncio, the callers would wait on it alike. That
is also why each caller pauses between calls: enough calls to tell the story, not so many that
the emulator's own latency hides the service's.

The modules, one concern each:

- ``scenario``: the story (``StoryPhase``, ``Scenario``), its timing and payloads, and the
  service's ``ServiceSettings`` that the timing follows;
- ``recording``: the run (``DemoRun``) and what it records (``CallRecord``, ``CircuitTransition``,
  and the platform's ``ServiceCallCount``);
- ``records``: what reached the service according to the platform (``ServiceRecords``);
- ``summary``: the numbers (``DemoSummary``, ``summarize``);
- ``console``: the live timeline and the summary table;
- ``chart``: the PNG chart (imported only when a chart is written: it needs matplotlib);
- ``targets``: where the demo runs (``DemoTarget``), and reading the service's settings there;
- ``run``: ``run_demo`` and ``play_demo``, the whole demo.
"""

from __future__ import annotations

from sfn_breaker.extras import missing_extra

try:
    from sfn_breaker.demo.console import TimelinePrinter, summary_table
    from sfn_breaker.demo.errors import DemoError
    from sfn_breaker.demo.recording import (
        CallRecord,
        CircuitTransition,
        DemoRecording,
        DemoRun,
        Outcome,
        ServiceCall,
        ServiceCallCount,
        StoryPhaseChange,
    )
    from sfn_breaker.demo.records import ServiceRecords
    from sfn_breaker.demo.run import DemoOptions, play_demo, run_demo
    from sfn_breaker.demo.scenario import Scenario, ServiceSettings, StoryPhase, call_tag, default_phases
    from sfn_breaker.demo.summary import DemoSummary, open_periods, recovery_to_close, summarize
    from sfn_breaker.demo.targets import (
        LOCAL_DEMO_CONTEXT,
        LOCAL_DEMO_SETTINGS,
        DemoTarget,
        deployed_target,
        local_target,
    )
except ModuleNotFoundError as exc:  # rich, for the timeline and the table: one traceback naming the extra
    raise (missing_extra(exc, needed_by="sfn_breaker.demo", extra="local") or exc) from None

__all__ = [
    "LOCAL_DEMO_CONTEXT",
    "LOCAL_DEMO_SETTINGS",
    "CallRecord",
    "CircuitTransition",
    "DemoError",
    "DemoOptions",
    "DemoRecording",
    "DemoRun",
    "DemoSummary",
    "DemoTarget",
    "Outcome",
    "Scenario",
    "ServiceCall",
    "ServiceCallCount",
    "ServiceRecords",
    "ServiceSettings",
    "StoryPhase",
    "StoryPhaseChange",
    "TimelinePrinter",
    "call_tag",
    "default_phases",
    "deployed_target",
    "local_target",
    "open_periods",
    "play_demo",
    "recovery_to_close",
    "run_demo",
    "summarize",
    "summary_table",
]
