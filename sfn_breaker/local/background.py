"""The emulator as a background process: ``breaker local up`` and ``breaker local down``.

``start_background`` runs ``python -m sfn_breaker.local.background`` (``main``: a
``LocalBreaker`` until SIGTERM or Ctrl-C) in its own session, and waits until the process has
recorded its endpoint and pid in the state file (``sfn_breaker.local.state``), which it does
once the stack is deployed; ``stop_background`` stops the recorded process. The process's output
goes to a log file next to the state file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sfn_breaker.contract import DEFAULT_STACK_NAME, EMULATOR_ACCESS_KEY, EMULATOR_REGION, EMULATOR_SECRET_KEY
from sfn_breaker.errors import EmulatorError
from sfn_breaker.local.assembly import Assembly
from sfn_breaker.local.state import EmulatorState, Origin, default_state_file, log_file_for

#: How a background emulator's log says, on its last line, why it did not start.
FAILED_TO_START = "circuit breaker emulator failed to start: "
#: ... and, with its exit status, that the user's app is what it cannot run (not the emulator).
CANNOT_RUN_APP = "circuit breaker emulator cannot run the app: "
EXIT_APP = 2


@dataclass(frozen=True)
class Started:
    state: EmulatorState
    already_running: bool


def start_background(
    state_file: Path | None = None,
    *,
    port: int = 0,
    context_overrides: Mapping[str, Any] | None = None,
    assembly_dir: Path | None = None,
    stack_name: str | None = None,
    app: Origin | None = None,
    timeout: float = 180.0,
) -> Started:
    """Start the emulator as a background process (unless one is running) and wait until it is ready.

    ``app``: the CDK app that ``assembly_dir`` was synthesized from, for the state file to name.
    The wait is bounded by ``timeout`` seconds; the process's output goes to a log file next to
    the state file, and its last lines are in the error when it fails to start.
    """
    state_file = state_file or default_state_file()
    current = EmulatorState.read(state_file)
    if current is not None and current.is_alive():
        return Started(current, already_running=True)
    state_file.unlink(missing_ok=True)

    state_file.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_file_for(state_file)
    command = [sys.executable, "-m", "sfn_breaker.local.background", "--state-file", str(state_file)]
    command += ["--port", str(port)]
    if assembly_dir is not None:
        command += ["--assembly", str(assembly_dir)]
    if stack_name is not None:
        command += ["--stack", stack_name]
    if app is not None and app.app is not None:
        command += ["--app", app.app, "--app-dir", str(app.app_dir)]
    if context_overrides:
        command += ["--context", json.dumps(dict(context_overrides))]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it outlives this command, and Ctrl-C here does not reach it
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            cannot_run = _reason(log_path, CANNOT_RUN_APP)
            if code == EXIT_APP and cannot_run is not None:
                from sfn_breaker.local.assembly import AppError

                raise AppError(cannot_run)
            reason = _reason(log_path)
            if reason is None:
                raise EmulatorError(f"the emulator exited with status {code} while starting:\n{_tail(log_path)}")
            raise EmulatorError(
                f"the emulator exited with status {code} while starting: {reason} (its log: {log_path})"
            )
        state = EmulatorState.read(state_file)
        if state is not None and state.pid == process.pid:
            # It runs on in its own session; this process will not wait for it.
            process.returncode = 0
            return Started(state, already_running=False)
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise EmulatorError(f"the emulator was not ready after {timeout:.0f} s:\n{_tail(log_path)}")
        time.sleep(0.1)


def stop_background(state_file: Path | None = None, *, timeout: float = 30.0) -> EmulatorState | None:
    """Stop the recorded emulator; returns its state, or ``None`` when none was running."""
    state_file = state_file or default_state_file()
    state = EmulatorState.read(state_file)
    if state is None:
        return None
    if not state.is_alive():
        state_file.unlink(missing_ok=True)
        return None
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _process_exists(state.pid):
        if time.monotonic() > deadline:
            os.kill(state.pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    state_file.unlink(missing_ok=True)
    return state


def _process_exists(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it when it is this process's child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reason(path: Path, prefix: str = FAILED_TO_START) -> str | None:
    """The one-line reason a background emulator gave for not starting, from its log."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    reasons = [line[len(prefix) :] for line in lines if line.startswith(prefix)]
    return reasons[-1] if reasons else None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> None:
    """``python -m sfn_breaker.local.background``: run the emulator until SIGTERM or Ctrl-C."""
    # Imported here: starting and stopping a background emulator does not load the emulator.
    from sfn_breaker.local.assembly import AppError
    from sfn_breaker.local.breaker import DEFAULT_HOST, LocalBreaker

    parser = argparse.ArgumentParser(
        description="The local emulator: the synthesized stack on moto, served on a loopback port."
    )
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default=EMULATOR_REGION)
    parser.add_argument("--assembly", type=Path, default=None, help="a synthesized cloud assembly directory")
    parser.add_argument("--stack", default=None, help="the assembly's stack (default: the demo's)")
    parser.add_argument("--context", default=None, help="CDK context overrides, as a JSON object")
    parser.add_argument("--app", default=None, help="the CDK app --assembly was synthesized from (for the state file)")
    parser.add_argument("--app-dir", default=None, help="the folder that app ran in")
    args = parser.parse_args(argv)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    assembly = Assembly(args.assembly, args.stack or DEFAULT_STACK_NAME) if args.assembly else None
    overrides = json.loads(args.context) if args.context else None
    # The handlers run in this process: give them the credentials and region a Lambda has.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", EMULATOR_ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", EMULATOR_SECRET_KEY)
    local = LocalBreaker(
        assembly=assembly,
        context_overrides=overrides,
        host=args.host,
        port=args.port,
        region=args.region,
        state_file=args.state_file or default_state_file(),
    )
    if args.app is not None:
        local.origin = Origin(app=args.app, app_dir=args.app_dir)
    try:
        local.start()
    except KeyboardInterrupt:
        return
    except AppError as exc:  # the user's app, not the emulator: one line says what to fix
        print(f"{CANNOT_RUN_APP}{exc}", flush=True)
        raise SystemExit(EXIT_APP) from None
    except Exception as exc:  # the whole story is in the log; the last line says it in one line
        traceback.print_exc(file=sys.stdout)
        print(f"{FAILED_TO_START}{one_line(exc)}", flush=True)
        raise SystemExit(1) from None
    try:
        print(f"circuit breaker emulator ready at {local.endpoint_url} (pid {os.getpid()})", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("circuit breaker emulator stopped", flush=True)
    finally:
        local.stop()


def one_line(exc: BaseException) -> str:
    """An error in one line: its first line and, for a multi-line message (a synth's stderr), its last."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) == 1:
        return lines[0] if isinstance(exc, EmulatorError) else f"{type(exc).__name__}: {lines[0]}"
    return f"{lines[0].rstrip(':')}: {lines[-1]}"


if __name__ == "__main__":
    main()
