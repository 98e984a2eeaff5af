"""The whole demo: ``run_demo`` (what ``breaker demo`` calls) picks where to run, and ``play_demo``
plays the story there and presents it (timeline, summary table, chart); ``DemoOptions`` holds what
was asked. While the in-process emulator runs, its threads' output is kept off the timeline
(``_emulator_output_to``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast

from sfn_breaker.contract import DEFAULT_STACK_NAME, DEMO_SERVICE
from sfn_breaker.core.model import CircuitState
from sfn_breaker.demo.console import TimelinePrinter, summary_table
from sfn_breaker.demo.declines import show_declines
from sfn_breaker.demo.errors import DemoError
from sfn_breaker.demo.recording import (
    DEFAULT_CALLERS,
    DEFAULT_PAUSE_SECONDS,
    DemoRecording,
    DemoRun,
    ServiceCallCount,
)
from sfn_breaker.demo.scenario import DEFAULT_HEALTHY_SECONDS, OutageKind, Scenario, default_phases
from sfn_breaker.demo.summary import DemoSummary, summarize
from sfn_breaker.demo.targets import LOCAL_DEMO_CONTEXT, DemoTarget, deployed_target, local_target
from sfn_breaker.errors import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console

    from sfn_breaker.demo.scenario import ServiceSettings
    from sfn_breaker.local import LocalBreaker

DEFAULT_OUT_DIR = Path("demo-output")
CHART_NAME = "breaker-demo.png"
#: Where the in-process emulator's own output (moto's and the Lambdas' log lines) goes.
EMULATOR_LOG = "emulator.log"
#: After Ctrl-C, how long the demo waits for the calls in flight to end before it summarizes.
INTERRUPT_WAIT_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What ``run_demo`` was asked for; durations left ``None`` follow the deployed settings."""

    callers: int = DEFAULT_CALLERS
    outage: OutageKind = "slow"
    healthy_seconds: float = DEFAULT_HEALTHY_SECONDS
    outage_seconds: float | None = None
    recovered_seconds: float | None = None
    pause_seconds: float = DEFAULT_PAUSE_SECONDS
    out_dir: Path = DEFAULT_OUT_DIR
    show_calls: bool = True
    chart: bool = True

    def __post_init__(self) -> None:
        if self.callers < 1:
            raise DemoError("callers must be at least 1")
        if self.pause_seconds < 0:
            raise DemoError("the pause between calls must not be negative")
        self.scenario(None)  # the phases' own checks

    def scenario(self, settings: ServiceSettings | None) -> Scenario:
        default_outage, default_recovered = default_phases(settings)
        return Scenario(
            outage=self.outage,
            healthy_seconds=float(self.healthy_seconds),
            outage_seconds=float(self.outage_seconds if self.outage_seconds is not None else default_outage),
            recovered_seconds=float(
                self.recovered_seconds if self.recovered_seconds is not None else default_recovered
            ),
        )


def run_demo(
    *,
    callers: int = DEFAULT_CALLERS,
    outage: OutageKind = "slow",
    healthy_seconds: float = DEFAULT_HEALTHY_SECONDS,
    outage_seconds: float | None = None,
    recovered_seconds: float | None = None,
    pause_seconds: float = DEFAULT_PAUSE_SECONDS,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    console: Console | None = None,
    local: LocalBreaker | None = None,
    where: Literal["auto", "local", "aws"] = "auto",
    stack_name: str = DEFAULT_STACK_NAME,
    show_calls: bool = True,
    chart: bool = True,
) -> DemoSummary:
    """Play the outage story and return its numbers; print the timeline and the summary table on
    ``console`` and write the chart to ``out_dir``.

    Where it runs: against ``local`` when one is given. Otherwise ``where="local"`` starts an
    in-process emulator with ``LOCAL_DEMO_SETTINGS`` (and stops it afterwards), ``where="aws"``
    uses the deployed stack ``stack_name`` (AWS, or the emulator at ``AWS_ENDPOINT_URL``), and
    ``where="auto"`` picks the deployed stack when ``AWS_ENDPOINT_URL`` is set or AWS
    credentials are found, and the local emulator otherwise. The outage and recovered durations
    default to what the deployed settings need (30 s and 15 s with the local demo settings).
    """
    from rich.console import Console

    options = DemoOptions(
        callers=callers,
        outage=outage,
        healthy_seconds=healthy_seconds,
        outage_seconds=outage_seconds,
        recovered_seconds=recovered_seconds,
        pause_seconds=pause_seconds,
        out_dir=Path(out_dir),
        show_calls=show_calls,
        chart=chart,
    )
    if where not in WHERE:
        raise DemoError(f"where must be one of {', '.join(WHERE)}, not {where!r}")
    console = console or Console()
    if local is not None:
        return play_demo(local_target(local), options, console)
    if where == "aws":
        _require_aws()
    if where == "aws" or (where == "auto" and _aws_configured()):
        try:
            target = deployed_target(stack_name=stack_name)
        except ConfigurationError as exc:
            if where == "aws" or os.environ.get("AWS_ENDPOINT_URL"):
                raise
            # Credentials but no stack (or a region without one): the story still plays locally.
            console.print(f"[yellow]{exc}[/]\nPlaying the story on a local emulator instead.")
        else:
            return play_demo(target, options, console)
    from sfn_breaker.local import LocalBreaker

    started = time.monotonic()
    with console.status("Starting the local emulator: synthesizing the CDK app and deploying it into moto..."):
        emulator = LocalBreaker(context_overrides=LOCAL_DEMO_CONTEXT).start()
    # The emulator's output stays off the terminal until it has stopped: after Ctrl-C its
    # executions in flight still run (and log) while it stops.
    with _emulator_output_to(options.out_dir / EMULATOR_LOG, console):
        try:
            console.print(f"Local emulator ready at {emulator.endpoint_url} ({time.monotonic() - started:.1f} s)")
            return play_demo(local_target(emulator), options, console, quiet=False)
        finally:
            emulator.stop()


WHERE = ("auto", "local", "aws")


class DemoInterrupted(KeyboardInterrupt):
    """Ctrl-C while the story played; the demo has said so and shown its partial summary."""

    reported = True

    def __init__(self, summary: DemoSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def _require_aws() -> None:
    """``where="aws"`` needs an endpoint, or AWS credentials and a region: say which is missing."""
    if any(os.environ.get(name) for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN")):
        return
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session()
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        raise ConfigurationError(f"Could not load AWS credentials: {exc}") from exc
    if credentials is None:
        raise ConfigurationError(
            "No AWS credentials found: `breaker demo --where aws` plays against the deployed stack. "
            "Configure credentials and a region (aws configure, AWS_PROFILE, ...), or run the demo locally "
            "with --where local."
        )
    if session.region_name is None:
        raise ConfigurationError(
            "AWS credentials are configured but no region: set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION) or run `aws configure`."
        )


def _aws_configured() -> bool:
    if os.environ.get("AWS_ENDPOINT_URL"):
        return True
    import boto3

    return boto3.Session().get_credentials() is not None


def play_demo(target: DemoTarget, options: DemoOptions, console: Console, *, quiet: bool = True) -> DemoSummary:
    """Play the story against ``target``: the part of ``run_demo`` after the target is chosen.

    ``quiet``: keep an in-process emulator's output off the timeline (``run_demo`` does it
    itself for the emulator it starts). Ctrl-C stops the callers, prints an ``interrupted``
    line and the summary of the calls that had ended, and raises ``DemoInterrupted``.
    """
    scenario = options.scenario(target.settings)
    run = DemoRun(
        target.client,
        scenario,
        callers=options.callers,
        pause_seconds=options.pause_seconds,
        settings=target.settings,
    )
    console.print(f"[bold]breaker demo[/] against {target.name}")
    if target.settings is not None:
        console.print(f"payment: {target.settings.describe()}")
    console.print(
        f"{run.callers} callers, each calling again {run.pause_seconds:g} s after its last answer; "
        f"healthy {scenario.healthy_seconds:g} s -> outage ({scenario.outage}) {scenario.outage_seconds:g} s "
        f"-> recovered {scenario.recovered_seconds:g} s"
    )
    initial = target.client.status(DEMO_SERVICE)
    if initial.state is not CircuitState.CLOSED:
        console.print(
            f"[yellow]The payment circuit is {initial.state.value} at the start; the story assumes it is "
            "closed (`breaker close payment`).[/]"
        )
    show_declines(target.client, console)
    if target.records is not None:
        target.records.start_here()

    started = time.monotonic()
    quieted = (
        _emulator_output_to(options.out_dir / EMULATOR_LOG, console)
        if target.in_process and quiet
        else contextlib.nullcontext()
    )
    interrupted = False
    in_flight = 0
    counts: list[ServiceCallCount] = []
    with quieted:
        try:
            run.play(TimelinePrinter(console, show_calls=options.show_calls, started_at=lambda: run.started_at))
            with console.status("Reading what reached the service from the platform's records..."):
                counts = target.records.collect(run, scenario) if target.records else []
        except KeyboardInterrupt:
            interrupted = True
            console.print(
                f"[bold yellow]interrupted[/] after {time.monotonic() - started:.0f} s: "
                "no new calls; waiting for the calls in flight (Ctrl-C again to quit at once)"
            )
            in_flight = run.stop(timeout=INTERRUPT_WAIT_SECONDS)
    calls, changes = run.snapshot()
    recording = DemoRecording(
        scenario=scenario,
        calls=sorted(calls, key=lambda c: c.started),
        changes=changes,
        service_counts=counts if not interrupted else [],
        duration_seconds=time.monotonic() - started,
        started_at=run.started_at,
    )
    summary = summarize(recording, target=target.name, settings=target.settings, callers=run.callers)
    if interrupted:
        still = f" ({in_flight} still in flight are not counted)" if in_flight else ""
        console.print(
            f"Partial summary: the {len(calls)} calls that had ended{still}; what reached payment was not read."
        )
        console.print(summary_table(summary))
        raise DemoInterrupted(summary)
    if options.chart:
        from sfn_breaker.demo.chart import write_chart

        summary = replace(summary, chart_path=write_chart(summary, options.out_dir / CHART_NAME))
    console.print(summary_table(summary))
    if summary.chart_path is not None:
        console.print(f"Chart: {summary.chart_path}")
    return summary


class _ThreadFilter:
    """A stand-in for ``sys.stdout``/``sys.stderr`` that lets the demo's own thread through and
    sends every other thread's writes (the in-process emulator's) to a log file instead."""

    def __init__(self, real: TextIO, log: TextIO, owner: int) -> None:
        self.real = real
        self.log = log
        self.owner = owner
        self.active = True
        self.encoding = real.encoding

    def write(self, text: str) -> int:
        if not self.active or threading.get_ident() == self.owner:
            return self.real.write(text)
        with contextlib.suppress(ValueError):  # the log may close while a late thread writes
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()
        with contextlib.suppress(ValueError):
            self.log.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _lambdas_logger_name() -> str:
    """The name of the logger the breaker's Lambdas log with: Powertools names it after
    POWERTOOLS_SERVICE_NAME as it was when the handlers were imported (``service_undefined`` when
    unset, as in a shell), which need not be what the environment says now."""
    from sfn_breaker.lambdas.observability import logger

    return logger.name


@contextlib.contextmanager
def _emulator_output_to(log_path: Path, console: Console) -> Iterator[None]:
    """Keep the in-process emulator's own output off the timeline, in ``log_path`` instead:
    moto's log line for every failed state, and the breaker's Lambdas' log and metric lines
    (which on AWS go to CloudWatch). The Lambdas' Powertools logger is silenced as well, since
    it may hold the real stdout from before."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The console keeps writing where it writes now, from any thread (its spinner has its own).
    console.file = console.file
    owner = threading.get_ident()
    function_logger = logging.getLogger(_lambdas_logger_name())
    was_disabled = function_logger.disabled
    with log_path.open("a", encoding="utf-8") as log:
        filters = (_ThreadFilter(sys.stdout, log, owner), _ThreadFilter(sys.stderr, log, owner))
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = cast(TextIO, filters[0]), cast(TextIO, filters[1])
        function_logger.disabled = True
        try:
            yield
        finally:
            function_logger.disabled = was_disabled
            sys.stdout, sys.stderr = saved
            for stream in filters:
                stream.active = False
