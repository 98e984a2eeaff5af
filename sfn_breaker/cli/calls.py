"""``breaker invoke``: call a service through the breaker."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sfn_breaker.cli.app import StackName, UseLocal, app, friendly_errors, make_client, usage_error
from sfn_breaker.contract import DEFAULT_STACK_NAME


@app.command()
@friendly_errors
def invoke(
    service: Annotated[str, typer.Argument(help="The registered service to call, e.g. payment.")],
    payload: Annotated[
        str | None, typer.Option("--payload", "-p", help='The payload, a JSON object, e.g. \'{"mode": "ok"}\'.')
    ] = None,
    payload_file: Annotated[
        Path | None, typer.Option("--payload-file", "-f", help="Read the payload from a JSON file ('-' for stdin).")
    ] = None,
    stack_name: StackName = DEFAULT_STACK_NAME,
    local: UseLocal = False,
) -> None:
    """Call SERVICE through the breaker and print its response (JSON).

    A fast fail exits with 3, a service failure or timeout with 4; both print the error and its
    cause to stderr.
    """
    if payload is not None and payload_file is not None:
        usage_error("give --payload or --payload-file, not both")
    body: Any = None
    if payload_file is not None:
        source = "--payload-file"
        try:
            text = sys.stdin.read() if str(payload_file) == "-" else payload_file.read_text()
        except OSError as exc:
            usage_error(f"cannot read {payload_file}: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            usage_error(f"{payload_file} is not UTF-8 text: {exc.reason} at byte {exc.start}")
        body = _parse_json(text, f"{source} {payload_file}")
    elif payload is not None:
        body = _parse_json(payload, "--payload")
    result = make_client(stack_name, local).call(service, body)
    typer.echo(json.dumps(result, indent=2))


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        usage_error(f"{source} is not valid JSON: {exc}")
