"""``python -m bench.outage``: the outage benchmark, four strategies, both outage modes.

Prints the Markdown report and writes it, the numbers (JSON) and the chart to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.outage.base import Emulator
from bench.outage.counting import DynamoDBRecorder
from bench.outage.operations import Counted, count_calls
from bench.outage.report import write
from bench.outage.run import Run, run
from bench.outage.service import Switchboard
from bench.outage.settings import DEFAULT_SCALE, MODES, STRATEGIES, Settings
from bench.outage.strategies import build
from sfn_breaker.contract import DEMO_SERVICE_OUTPUT
from sfn_breaker.local import LocalBreaker
from sfn_breaker.local.assembly import Assembly, synth


@contextmanager
def quiet() -> Iterator[None]:
    """Keep the in-process Lambdas' log and metric lines (CloudWatch's, on AWS) off the report.

    The functions' environment sets their log level, so their logger is disabled instead, and
    Powertools' metrics print their EMF lines with ``print``, silenced in its modules (as
    ``tests/local_fixtures.quiet_functions`` does). Everything is put back afterwards, so that a
    test process running the benchmark still sees the handlers' output in later tests.
    """
    import aws_lambda_powertools.metrics.base as metrics_base
    import aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch as metrics_emf

    import sfn_breaker.lambdas.observability as observability

    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    function_logger = logging.getLogger(observability.logger.name)
    was_disabled = function_logger.disabled
    loggers = [logging.getLogger(name) for name in ("moto", "aws_lambda_powertools", "bench.reference_design")]
    levels = [logger.level for logger in loggers]
    modules: list[Any] = [metrics_base, metrics_emf]
    function_logger.disabled = True
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    for module in modules:
        module.print = lambda *args, **kwargs: None
    try:
        yield
    finally:
        function_logger.disabled = was_disabled
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for module in modules:
            del module.print


def context(settings: Settings) -> dict[str, object]:
    """The demo stack with this project's defaults, but the shared timeout and open period."""
    return {
        "circuit-breaker": {
            "openDurationSeconds": settings.open_period,
            "serviceTimeoutSeconds": settings.timeout,
        }
    }


@contextmanager
def emulator(settings: Settings, assembly: Assembly | None = None) -> Iterator[Emulator]:
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as workdir:
        if assembly is None:
            assembly = synth(Path(workdir) / "cdk.out", context(settings))
        recorder = DynamoDBRecorder()
        with LocalBreaker(assembly=assembly) as local, recorder.installed():
            switchboard = Switchboard()
            service_function = local.stack.outputs[DEMO_SERVICE_OUTPUT]
            local.runtime.stand_in(service_function, switchboard)
            yield Emulator(
                local=local,
                session=local.session,
                runtime=local.runtime,
                service_function=service_function,
                switchboard=switchboard,
                recorder=recorder,
                settings=settings,
            )


def benchmark(
    settings: Settings, out_dir: Path, assembly: Assembly | None = None, progress: bool = True
) -> tuple[list[Run], dict[str, dict[str, Counted]], str]:
    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    began = time.monotonic()
    with quiet(), emulator(settings, assembly) as emu:
        strategies = [build(name, emu) for name in settings.strategies]
        say(f"emulator ready after {time.monotonic() - began:.0f} s")
        counted = {}
        for strategy in strategies:
            counted[strategy.name] = count_calls(emu, strategy)
        say(f"operations counted after {time.monotonic() - began:.0f} s")
        runs: list[Run] = []
        for mode in settings.modes:
            for strategy in strategies:
                result = run(emu, strategy, mode)
                runs.append(result)
                say(
                    f"{mode:4} {strategy.name:16} reached the dead service {result.reached_while_down:4}, "
                    f"calls {len(result.calls):4} ({time.monotonic() - began:.0f} s)"
                )
        text = write(out_dir, settings, runs, counted, emu.service_function)
    say(f"done in {time.monotonic() - began:.0f} s; wrote {out_dir}/outage.md, outage.json, outage.png")
    return runs, counted, text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outage", description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="time scale (default 1/3)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--out-dir", type=Path, default=Path("bench-output"))
    args = parser.parse_args(argv)
    settings = Settings(
        callers=args.callers, scale=args.scale, modes=tuple(args.modes), strategies=tuple(args.strategies)
    )
    _, _, text = benchmark(settings, args.out_dir)
    print()
    print(text)


if __name__ == "__main__":
    main()
