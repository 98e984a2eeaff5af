"""The mutation check: deliberate bugs in the workflow and the rules, each of which a test must catch.

Run on demand (``make mutation``), not in CI: it runs the workflow tests once per mutation.

Each mutation edits one file of the working tree in place (the ASL definition, or a module of
``sfn_breaker.core``), runs the tests that guard that behaviour, and restores the file, even
when interrupted. A mutation is *killed* when a test fails, and *survives* when every test
passes: a survivor is a behaviour no test protects (or an equivalent mutation, to be explained).
The tests synthesize the app afresh in each run, so what they execute is the mutated definition as
``cdk synth`` would produce it.

Add a mutation here whenever you add a behaviour. Each one names the text it changes, and fails
loudly when that text is no longer there, so the list cannot silently go stale.

    python -m tests.mutation_check            # every mutation
    python -m tests.mutation_check -k probe   # those whose name contains "probe"
    python -m tests.mutation_check --list
    python -m tests.mutation_check --mutmut   # then mutmut on the pure rules (pyproject's [tool.mutmut])
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
DEFINITION = REPOSITORY / "statemachine" / "circuit_breaker.asl.json"
TRANSITIONS = REPOSITORY / "sfn_breaker" / "core" / "transitions.py"
READING = REPOSITORY / "sfn_breaker" / "core" / "reading.py"
STREAM_MIRROR = REPOSITORY / "lambdas" / "stream_mirror.py"
ASSEMBLY = REPOSITORY / "sfn_breaker" / "local" / "assembly.py"
LOCAL_CLI = REPOSITORY / "sfn_breaker" / "cli" / "local.py"
NODE_TESTS = (
    "tests/test_own_app.py::test_local_up_refuses_node_20_in_one_line_before_any_synth",
    "tests/test_own_app.py::test_local_breaker_refuses_node_20_before_any_synth",
    "tests/test_own_app.py::test_jsii_node_is_the_node_checked",
)
LOCAL_UP_TESTS = (
    "tests/test_cli.py::test_local_up_of_something_else_while_an_emulator_runs_refuses_in_one_line",
    "tests/test_own_app.py::test_local_up_in_the_apps_folder_runs_its_cdk_json_app",
)
CLIENT = REPOSITORY / "sfn_breaker" / "client" / "sync.py"
STORE = REPOSITORY / "sfn_breaker" / "core" / "store.py"
SCALE_TESTS = ("tests/test_scale_sharding.py", "tests/test_scale_throttling.py")
WORKFLOW_TESTS = ("tests/test_workflow.py", "tests/test_workflow_semantics.py")
RULE_TESTS = ("tests/test_rules.py", "tests/test_transitions.py", *WORKFLOW_TESTS)
FEATURE_TESTS = ("tests/test_workflow_features.py", "tests/test_workflow.py")
DEMO_APP = REPOSITORY / "infra" / "demo_app.py"


class StaleMutation(RuntimeError):
    """The code a mutation edits is no longer there: update the mutation."""


@dataclass(frozen=True)
class Mutation:
    name: str
    file: Path
    mutate: Callable[[str], str]
    tests: tuple[str, ...]


def asl(edit: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    """A mutation of the workflow definition, as an edit of its parsed states."""

    def mutate(text: str) -> str:
        definition = json.loads(text)
        edit(definition["States"])
        return json.dumps(definition, indent=2)

    return mutate


def replace(old: str, new: str) -> Callable[[str], str]:
    """A mutation of source text: ``old`` (which must occur exactly once) becomes ``new``."""

    def mutate(text: str) -> str:
        if text.count(old) != 1:
            raise StaleMutation(f"expected exactly one {old!r}")
        return text.replace(old, new)

    return mutate


def _choice(states: dict[str, Any], state: str, **where: Any) -> dict[str, Any]:
    for rule in states[state]["Choices"]:
        flat = json.dumps(rule)
        if all(json.dumps({key: value})[1:-1] in flat for key, value in where.items()):
            rule_found: dict[str, Any] = rule
            return rule_found
    raise StaleMutation(f"no rule of {state} with {where}")


def _retry_never_taken(states: dict[str, Any]) -> None:
    for rule in states["ShouldRetry"]["Choices"]:
        rule["Next"] = "RecordFailure"


def _failed_probe_retried(states: dict[str, Any]) -> None:
    states["ShouldRetry"]["Choices"].remove(_choice(states, "ShouldRetry", StringEquals="probe"))


def _failed_attempts_never_counted(states: dict[str, Any]) -> None:
    states["TooManyFailedAttempts"]["Default"] = "PrepareRetry"
    states["TooManyFailedAttempts"]["Choices"][0]["Next"] = "PrepareRetry"


def _no_reread_before_retry(states: dict[str, Any]) -> None:
    states["WaitBeforeRetry"]["Next"] = "ExecuteLambda"


def _unconditional_close(states: dict[str, Any]) -> None:
    parameters = states["CloseCircuit"]["Parameters"]
    del parameters["ConditionExpression"], parameters["ExpressionAttributeValues"]


def _open_rule_before_forced_closed(states: dict[str, Any]) -> None:
    rules = states["IsCircuitClosed"]["Choices"]
    forced_closed = _choice(states, "IsCircuitClosed", StringEquals="CLOSED")
    open_rule = _choice(states, "IsCircuitClosed", StringGreaterThanPath="$.Circuit.CheckedAt")
    i, j = rules.index(forced_closed), rules.index(open_rule)
    rules[i], rules[j] = rules[j], rules[i]


def _open_rule_inverted(states: dict[str, Any]) -> None:
    for part in _choice(states, "IsCircuitClosed", StringGreaterThanPath="$.Circuit.CheckedAt")["And"]:
        if "StringGreaterThanPath" in part:
            part["StringLessThanPath"] = part.pop("StringGreaterThanPath")


def _extra_probe_admitted(states: dict[str, Any]) -> None:
    rule = _choice(states, "ProbeDecision", StringEquals="probe")
    rule["Or"].append({"Variable": "$.Probe.Decision", "StringEquals": "busy"})


def _success_never_closes(states: dict[str, Any]) -> None:
    _choice(states, "WasCircuitOpen", IsPresent=True)["Next"] = "Succeeded"


def _forced_window_never_ends(states: dict[str, Any]) -> None:
    parameters = states["CloseCircuit"]["Parameters"]
    parameters["ConditionExpression"] = "OpenUntil = :seen AND attribute_not_exists(Forced)"
    del parameters["ExpressionAttributeValues"][":forcedOpen"]


def _store_fault_policy_ignored(states: dict[str, Any]) -> None:
    _choice(states, "StoreFaultPolicy", StringEquals="FAIL_FAST")["Next"] = "ExecuteLambda"


def _timeout_not_named(states: dict[str, Any]) -> None:
    _choice(states, "ServiceFailed", StringEquals="States.Timeout")["Next"] = "FailWithStatesError"


def _no_retry_wait(states: dict[str, Any]) -> None:
    wait = states["WaitBeforeRetry"]
    del wait["SecondsPath"]
    wait["Seconds"] = 0


def _held_open_ignored(states: dict[str, Any]) -> None:
    rules = states["IsCircuitClosed"]["Choices"]
    rules.remove(_choice(states, "IsCircuitClosed", StringEquals="OPEN"))


def _ignored_error_retried(states: dict[str, Any]) -> None:
    _choice(states, "IsIgnoredError", BooleanEquals=True)["Next"] = "ShouldRetry"


def _ignored_error_skips_the_circuit(states: dict[str, Any]) -> None:
    _choice(states, "IsIgnoredError", BooleanEquals=True)["Next"] = "IgnoredServiceError"


def _breaker_names_passed_through(states: dict[str, Any]) -> None:
    rules = states["ServiceFailed"]["Choices"]
    rules.remove(_choice(states, "ServiceFailed", StringEquals="CircuitOpen"))


def _one_success_always_closes(states: dict[str, Any]) -> None:
    states["CloseOrCount"]["Default"] = "CloseCircuit"


def _slow_start_admits_everyone(states: dict[str, Any]) -> None:
    states["AdmitDuringSlowStart"]["Default"] = "ExecuteLambda"


def _static_fallback_unused(states: dict[str, Any]) -> None:
    states["FallbackOrFailFast"]["Choices"].remove(_choice(states, "FallbackOrFailFast", StringEquals="response"))


def _failed_call_never_falls_back(states: dict[str, Any]) -> None:
    _choice(states, "FallbackOnFailure", BooleanEquals=True)["Next"] = "ServiceFailed"


def _empty_array_payload_accepted(states: dict[str, Any]) -> None:
    states["RouteService"]["Choices"].remove(_choice(states, "RouteService", Variable="$.PayloadIsEmptyArray"))


def _payload_hashed(states: dict[str, Any]) -> None:
    """The regression of issue 22: a digest of the payload's text, which States.Hash refuses past
    10,000 characters."""
    parameters = states["NormalizeInput"]["Parameters"]
    del parameters["PayloadIsEmptyArray.$"]
    parameters["PayloadDigest.$"] = "States.Hash(States.JsonToString($.Payload), 'MD5')"
    rule = _choice(states, "RouteService", Variable="$.PayloadIsEmptyArray")
    rule.pop("BooleanEquals")
    rule.update(Variable="$.PayloadDigest", StringEquals="d751713988987e9331980363e24189ce")


def _answer_kept_beside_the_request(states: dict[str, Any]) -> None:
    states["ExecuteLambda"]["ResultPath"] = "$.Result"
    states["Succeeded"]["InputPath"] = "$.Result.Answer"


def _answer_too_large_taken_for_a_failure(states: dict[str, Any]) -> None:
    catchers = states["ExecuteLambda"]["Catch"]
    if catchers[0]["ErrorEquals"] != ["States.DataLimitExceeded"]:
        raise StaleMutation("the service call's first Catch no longer names States.DataLimitExceeded")
    del catchers[0]


MUTATIONS = (
    Mutation(
        "an answer too large is retried as a failure",
        DEFINITION,
        asl(_answer_too_large_taken_for_a_failure),
        ("tests/test_workflow.py",),
    ),
    Mutation("retry never taken", DEFINITION, asl(_retry_never_taken), WORKFLOW_TESTS),
    Mutation("no re-read of the circuit before a retry", DEFINITION, asl(_no_reread_before_retry), WORKFLOW_TESTS),
    Mutation("CloseCircuit unconditional", DEFINITION, asl(_unconditional_close), WORKFLOW_TESTS),
    Mutation(
        "IsCircuitClosed: open rule before forced closed",
        DEFINITION,
        asl(_open_rule_before_forced_closed),
        WORKFLOW_TESTS,
    ),
    Mutation("IsCircuitClosed: open rule compares the wrong way", DEFINITION, asl(_open_rule_inverted), WORKFLOW_TESTS),
    Mutation("IsCircuitClosed: held open ignored", DEFINITION, asl(_held_open_ignored), WORKFLOW_TESTS),
    Mutation("an extra probe admitted", DEFINITION, asl(_extra_probe_admitted), WORKFLOW_TESTS),
    Mutation("a probe's success never closes", DEFINITION, asl(_success_never_closes), WORKFLOW_TESTS),
    Mutation("a forced-open window never ends", DEFINITION, asl(_forced_window_never_ends), WORKFLOW_TESTS),
    Mutation("store-fault policy ignored", DEFINITION, asl(_store_fault_policy_ignored), WORKFLOW_TESTS),
    Mutation("a timeout not named ServiceTimeout", DEFINITION, asl(_timeout_not_named), WORKFLOW_TESTS),
    Mutation("no wait between retries", DEFINITION, asl(_no_retry_wait), WORKFLOW_TESTS),
    Mutation("a failed probe is retried", DEFINITION, asl(_failed_probe_retried), WORKFLOW_TESTS),
    Mutation(
        "the fleet's failed attempts never open the circuit",
        DEFINITION,
        asl(_failed_attempts_never_counted),
        WORKFLOW_TESTS,
    ),
    Mutation("an ignored error is retried and counted", DEFINITION, asl(_ignored_error_retried), FEATURE_TESTS),
    Mutation(
        "an ignored error in half-open leaves the circuit as it was",
        DEFINITION,
        asl(_ignored_error_skips_the_circuit),
        FEATURE_TESTS,
    ),
    Mutation(
        "a service error named CircuitOpen passes for a fast fail",
        DEFINITION,
        asl(_breaker_names_passed_through),
        FEATURE_TESTS,
    ),
    Mutation("one success closes whatever the threshold", DEFINITION, asl(_one_success_always_closes), FEATURE_TESTS),
    Mutation("a slow start admits every call", DEFINITION, asl(_slow_start_admits_everyone), FEATURE_TESTS),
    Mutation("a static fallback is never used", DEFINITION, asl(_static_fallback_unused), FEATURE_TESTS),
    Mutation("a failed call never falls back", DEFINITION, asl(_failed_call_never_falls_back), FEATURE_TESTS),
    Mutation("an empty array reaches the service", DEFINITION, asl(_empty_array_payload_accepted), FEATURE_TESTS),
    Mutation("a payload's text hashed (10,000 characters at most)", DEFINITION, asl(_payload_hashed), WORKFLOW_TESTS),
    Mutation(
        "the service's answer held beside the request",
        DEFINITION,
        asl(_answer_kept_beside_the_request),
        WORKFLOW_TESTS,
    ),
    Mutation(
        "a failure while open pushes the expiry out",
        TRANSITIONS,
        replace(
            "never push it out.\n        return None, FailureOutcome.ALREADY_OPEN",
            "never push it out.\n        return replace(circuit, expiry=failure_expiry(now, policy.open_duration(0))), "
            "FailureOutcome.ALREADY_OPEN",
        ),
        RULE_TESTS,
    ),
    Mutation(
        "the threshold counts one failure too few",
        TRANSITIONS,
        replace("if len(recent) >= policy.failure_threshold:", "if len(recent) > policy.failure_threshold:"),
        RULE_TESTS,
    ),
    Mutation(
        "the success threshold is ignored",
        TRANSITIONS,
        replace("    if successes < policy.success_threshold:", "    if successes < 1:"),
        RULE_TESTS,
    ),
    Mutation(
        "a slow start's step ends a second late",
        TRANSITIONS,
        replace("            if ends > now:", "            if ends >= now:"),
        RULE_TESTS,
    ),
    Mutation(
        "corrupt bookkeeping blocks recording",
        TRANSITIONS,
        replace(
            "            failures=parsed(model.FAILURES, _times, ()),",
            "            failures=tuple(int(f) for f in item.get(model.FAILURES) or ()),",
        ),
        (*RULE_TESTS, "tests/test_workflow_features.py"),
    ),
    Mutation(
        "a forced-closed circuit reads as open",
        READING,
        replace(
            "    if forced == model.FORCED_CLOSED:\n        return CircuitState.FORCED_CLOSED\n",
            "",
        ),
        RULE_TESTS,
    ),
    Mutation(
        "the shard choice fixed at 0",
        DEFINITION,
        replace("States.MathRandom(0, $.Service.ReadShards)", "0"),
        SCALE_TESTS,
    ),
    Mutation(
        "a read shard never written",
        STREAM_MIRROR,
        replace("model.shard_keys(service, shards)[1:]", "model.shard_keys(service, shards)[2:]"),
        SCALE_TESTS,
    ),
    Mutation(
        "read shards never cleared when the circuit closes",
        STREAM_MIRROR,
        replace(
            "    circuit_store().write_shards(shard_keys, after)\n",
            "    if after is not None:\n        circuit_store().write_shards(shard_keys, after)\n",
        ),
        SCALE_TESTS,
    ),
    Mutation(
        "the CLI's close leaves the read shards as they are",
        CLIENT,
        replace(
            "            shards = self._repair(store, service, now)  # a stale shard goes",
            "            shards = None  # a stale shard goes",
        ),
        SCALE_TESTS,
    ),
    Mutation(
        "a resync leaves shards beyond readShards",
        STORE,
        replace("            self.write_shards(unread, None)\n", ""),
        SCALE_TESTS,
    ),
    Mutation(
        "a read shard out of step not shown",
        CLIENT,
        replace("        stale_shards=_shard_views(stale or {}, now),", "        stale_shards=(),"),
        SCALE_TESTS,
    ),
    Mutation(
        "a read shard's own stream record handled as a circuit",
        STREAM_MIRROR,
        replace("    if model.is_shard_key(service):\n        return 0", "    if False:\n        return 0"),
        SCALE_TESTS,
    ),
    Mutation(
        "a refused opening write not retried by the workflow",
        DEFINITION,
        asl(lambda states: states["RecordFailure"].pop("Retry")),
        SCALE_TESTS,
    ),
    Mutation(
        "Node 20 accepted for the CDK",
        ASSEMBLY,
        replace("if int(version.group(1)) < NODE_MIN_MAJOR:", "if int(version.group(1)) < 20:"),
        NODE_TESTS,
    ),
    Mutation(
        "a synth that does not check Node",
        ASSEMBLY,
        replace(
            "    require_node()\n    outdir.mkdir(parents=True, exist_ok=True)",
            "    outdir.mkdir(parents=True, exist_ok=True)",
        ),
        NODE_TESTS,
    ),
    Mutation(
        "local up ignores the folder's cdk.json and runs the demo",
        LOCAL_CLI,
        replace("    cdk_json_app = app_from_cdk_json(folder)\n", "    cdk_json_app = None\n    return Origin()\n"),
        LOCAL_UP_TESTS,
    ),
    Mutation(
        "local up takes any running emulator for the one asked",
        LOCAL_CLI,
        replace("        state.origin == request\n", "        True\n"),
        LOCAL_UP_TESTS,
    ),
    Mutation(
        "a throttled circuit read not retried",
        DEFINITION,
        asl(lambda states: states["GetCircuitStatus"].pop("Retry")),
        SCALE_TESTS,
    ),
    Mutation(
        "the demo app without the feature flags cdk init writes (cdk synth warns)",
        DEMO_APP,
        replace(
            "DEFAULT_CONTEXT: dict[str, Any] = dict(RECOMMENDED_FEATURE_FLAGS)", "DEFAULT_CONTEXT: dict[str, Any] = {}"
        ),
        ("tests/test_tooling.py",),
    ),
)


@dataclass
class Outcome:
    mutation: Mutation
    killed: bool
    seconds: float
    detail: str


def run_tests(tests: tuple[str, ...], *, stop_at_first: bool) -> tuple[int, str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *(["-x"] if stop_at_first else []),
        *tests,
    ]
    result = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("FAILED tests/", "ERROR tests/"))]
    return result.returncode, (failed[0] if failed else (lines[-1] if lines else result.stderr.strip()[-300:]))


def check(mutation: Mutation) -> Outcome:
    original = mutation.file.read_text()
    started = time.monotonic()
    try:
        mutated = mutation.mutate(original)
        if mutated == original:
            raise StaleMutation("the mutation changed nothing")
        mutation.file.write_text(mutated)
        code, detail = run_tests(mutation.tests, stop_at_first=True)
    finally:
        mutation.file.write_text(original)
    # pytest: 0 all passed, 1 some failed; anything else (a collection or usage error) is not a
    # verdict on the mutation and is reported as such.
    if code not in (0, 1):
        raise RuntimeError(f"{mutation.name}: pytest exited {code}: {detail}")
    return Outcome(mutation, killed=code == 1, seconds=time.monotonic() - started, detail=detail)


def run_mutmut() -> tuple[dict[str, int], list[str]]:
    """mutmut on the pure rules (``[tool.mutmut]`` in pyproject.toml): its counts and its survivors."""
    mutmut = [sys.executable, "-m", "mutmut"]
    subprocess.run([*mutmut, "run"], cwd=REPOSITORY, capture_output=True, text=True, check=False)
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    stats: dict[str, int] = json.loads((REPOSITORY / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = subprocess.run([*mutmut, "results"], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    survivors = [line.split(":")[0].strip() for line in results.stdout.splitlines() if line.endswith(": survived")]
    return stats, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deliberate bugs that the tests must catch.")
    parser.add_argument("-k", dest="pattern", default="", help="only mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument("--mutmut", action="store_true", help="then run mutmut on the pure rules")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.pattern in m.name]
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name}  ({mutation.file.relative_to(REPOSITORY)})")
        return 0

    started = time.monotonic()
    baseline = sorted({test for m in chosen for test in m.tests})
    code, detail = run_tests(tuple(baseline), stop_at_first=False)
    if code != 0:
        print(f"the tests fail without any mutation (pytest exit {code}), so no mutation can be judged: {detail}")
        return 2
    outcomes = []
    for mutation in chosen:
        outcome = check(mutation)
        outcomes.append(outcome)
        verdict = "killed  " if outcome.killed else "SURVIVED"
        print(f"{verdict} {mutation.name} ({outcome.seconds:.0f} s): {outcome.detail}", flush=True)
    killed = sum(o.killed for o in outcomes)
    print(f"\nmutation score: {killed}/{len(outcomes)} killed in {time.monotonic() - started:.0f} s")
    survivors = [o.mutation.name for o in outcomes if not o.killed]
    if survivors:
        print("survivors: " + "; ".join(survivors))
    if args.mutmut:
        stats, mutmut_survivors = run_mutmut()
        judged = stats["killed"] + stats["survived"] + stats["timeout"]
        print(
            f"mutmut on the pure rules: {stats['killed']}/{judged} killed "
            f"({stats['no_tests']} mutants no selected test reaches); `mutmut show NAME` shows one"
        )
        for name in mutmut_survivors:
            print(f"  survived: {name}")
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main())
