"""The state transitions as pure functions, and a property test against a small reference model."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sfn_breaker.core import model
from sfn_breaker.core.model import CircuitState
from sfn_breaker.core.transitions import (
    Circuit,
    FailureOutcome,
    Policy,
    ProbeDecision,
    SuccessOutcome,
    changes,
    claim_probe,
    on_failed_attempts,
    on_failure,
    on_probe_success,
)

NOW = 1_800_000_000
POLICY = Policy(open_duration_seconds=30, failure_threshold=3, failure_window_seconds=60, probe_lease_seconds=20)


class TestThreshold:
    def test_opens_when_the_threshold_is_reached_within_the_window(self) -> None:
        circuit = Circuit()
        for offset, expected in [
            (0, FailureOutcome.COUNTED),
            (10, FailureOutcome.COUNTED),
            (20, FailureOutcome.OPENED),
        ]:
            after, outcome = on_failure(circuit, NOW + offset, POLICY)
            assert outcome is expected
            assert after is not None
            circuit = after
        assert circuit.expiry == NOW + 20 + 30
        assert circuit.failures == ()
        assert circuit.opens == 1  # the first open of a run of opens (growth counts from here)

    def test_failures_outside_the_window_do_not_count(self) -> None:
        circuit = Circuit(failures=(NOW - 61, NOW - 59), exists=True)
        after, outcome = on_failure(circuit, NOW, POLICY)
        assert outcome is FailureOutcome.COUNTED
        assert after is not None and after.failures == (NOW - 59, NOW)

    def test_default_policy_opens_on_the_first_failed_execution(self) -> None:
        after, outcome = on_failure(Circuit(), NOW, Policy())
        assert outcome is FailureOutcome.OPENED and after is not None and after.expiry == NOW + 30

    def test_a_failure_while_open_changes_nothing(self) -> None:
        assert on_failure(Circuit(expiry=NOW + 5, opens=1, exists=True), NOW, POLICY) == (
            None,
            FailureOutcome.ALREADY_OPEN,
        )

    @pytest.mark.parametrize("forced", [model.FORCED_OPEN, model.FORCED_CLOSED])
    def test_forced_states_are_never_changed_by_a_failure(self, forced: str) -> None:
        assert on_failure(Circuit(forced=forced, exists=True), NOW, POLICY) == (None, FailureOutcome.FORCED)


class TestHalfOpen:
    def test_one_probe_then_busy(self) -> None:
        expired = Circuit(expiry=NOW - 1, opens=1, exists=True)
        claimed, decision = claim_probe(expired, NOW, POLICY, "exec-1")
        assert decision is ProbeDecision.PROBE and claimed is not None
        assert claimed.probes == {"exec-1": NOW + 20}
        assert claim_probe(claimed, NOW + 1, POLICY, "exec-2") == (None, ProbeDecision.BUSY)
        assert claim_probe(claimed, NOW + 1, POLICY, "exec-1") == (None, ProbeDecision.PROBE)  # its retries

    def test_a_dead_probe_claim_lapses(self) -> None:
        stuck = Circuit(expiry=NOW - 100, opens=1, probes={"dead": NOW - 1}, exists=True)
        claimed, decision = claim_probe(stuck, NOW, POLICY, "next")
        assert decision is ProbeDecision.PROBE
        assert claimed is not None and claimed.probes == {"next": NOW + 20}

    def test_several_probes_when_configured(self) -> None:
        policy = Policy(half_open_probes=2)
        circuit = Circuit(expiry=NOW - 1, opens=1, exists=True)
        decisions = []
        for execution in ("a", "b", "c"):
            after, decision = claim_probe(circuit, NOW, policy, execution)
            circuit = after or circuit
            decisions.append(decision)
        assert decisions == [ProbeDecision.PROBE, ProbeDecision.PROBE, ProbeDecision.BUSY]

    def test_failed_probe_reopens_for_longer_when_growth_is_on(self) -> None:
        policy = Policy(open_duration_seconds=10, open_duration_growth=2.0, max_open_duration_seconds=35)
        circuit = Circuit(expiry=NOW - 1, opens=1, probes={"p": NOW + 5}, exists=True)
        durations = []
        for step in range(4):
            now = NOW + 100 * step
            circuit = Circuit(expiry=now - 1, opens=circuit.opens, exists=True)
            after, outcome = on_failure(circuit, now, policy)
            assert outcome is FailureOutcome.REOPENED and after is not None
            durations.append(after.expiry - now)  # type: ignore[operator]
            assert after.probes == {}
            circuit = after
        assert durations == [20, 35, 35, 35]  # 10 x 2^1, then capped

    def test_growth_off_by_default(self) -> None:
        after, _ = on_failure(Circuit(expiry=NOW - 1, opens=5, exists=True), NOW, Policy())
        assert after is not None and after.expiry == NOW + 30

    def test_probe_success_closes(self) -> None:
        half_open = Circuit(expiry=NOW - 1, opens=2, probes={"p": NOW + 5}, successes=0, exists=True)
        assert on_probe_success(half_open, NOW, Policy(), "p") == (Circuit(), SuccessOutcome.CLOSED)

    def test_open_and_closed_circuits_send_callers_their_way(self) -> None:
        assert claim_probe(Circuit(), NOW, POLICY, "x") == (None, ProbeDecision.CALL)
        assert claim_probe(Circuit(expiry=NOW + 9, exists=True), NOW, POLICY, "x") == (None, ProbeDecision.OPEN)
        assert claim_probe(Circuit(forced=model.FORCED_OPEN, exists=True), NOW, POLICY, "x") == (
            None,
            ProbeDecision.OPEN,
        )


class TestBoundaries:
    """The exact edges of each rule, where an off-by-one hides."""

    def test_a_failed_probe_reopens_with_a_clean_slate(self) -> None:
        half_open = Circuit(
            expiry=NOW - 1, forced=model.FORCED_OPEN, failures=(NOW - 2,), opens=3, probes={"p": NOW + 5}, exists=True
        )
        after, outcome = on_failure(half_open, NOW, Policy(open_duration_seconds=10))
        assert outcome is FailureOutcome.REOPENED
        assert after == replace(half_open, expiry=NOW + 10, forced=None, failures=(), opens=4, probes={})

    def test_a_failure_exactly_at_the_window_start_no_longer_counts(self) -> None:
        circuit = Circuit(failures=(NOW - 60, NOW - 59), exists=True)
        after, outcome = on_failure(circuit, NOW, POLICY)  # window 60 s, threshold 3
        assert outcome is FailureOutcome.COUNTED
        assert after is not None and after.failures == (NOW - 59, NOW)

    def test_a_probe_claim_lapses_at_its_lease(self) -> None:
        circuit = Circuit(expiry=NOW - 100, opens=1, probes={"old": NOW}, exists=True)
        assert circuit.active_probes(NOW) == {}
        assert circuit.active_probes(NOW - 1) == {"old": NOW}

    def test_only_a_half_open_circuit_is_closed_by_a_success(self) -> None:
        for circuit in (
            Circuit(expiry=NOW + 10, opens=1, exists=True),  # still open
            Circuit(),  # closed meanwhile
            Circuit(forced=model.FORCED_CLOSED, expiry=NOW - 1, exists=True),
            Circuit(forced=model.FORCED_OPEN, exists=True),
        ):
            assert on_probe_success(circuit, NOW, Policy(), "p") == (None, SuccessOutcome.NOT_HALF_OPEN)

    def test_the_success_threshold_counts_successes_in_a_row(self) -> None:
        policy = Policy(success_threshold=3)
        circuit = Circuit(expiry=NOW - 1, opens=1, probes={"p": NOW + 5, "q": NOW + 5}, exists=True)
        after, outcome = on_probe_success(circuit, NOW, policy, "p")
        assert outcome is SuccessOutcome.COUNTED
        assert after == replace(circuit, successes=1, probes={"q": NOW + 5})  # its claim released
        after, outcome = on_probe_success(replace(after, successes=2), NOW, policy, "q")
        assert (after, outcome) == (Circuit(), SuccessOutcome.CLOSED)  # the third in a row closes

    def test_a_failed_probe_resets_the_successes(self) -> None:
        circuit = Circuit(expiry=NOW - 1, opens=1, successes=2, exists=True)
        after, outcome = on_failure(circuit, NOW, Policy(success_threshold=3))
        assert outcome is FailureOutcome.REOPENED and after is not None and after.successes == 0

    def test_a_slow_start_admits_10_then_50_percent(self) -> None:
        policy = Policy(slow_start_seconds=60)
        after, outcome = on_probe_success(Circuit(expiry=NOW - 1, opens=1, exists=True), NOW, policy, "p")
        assert outcome is SuccessOutcome.SLOW_START and after is not None
        assert after.slow_start == (NOW + 30, NOW + 60) and after.state(NOW) is CircuitState.CLOSED
        assert [after.admitted_percent(NOW + dt) for dt in (0, 29, 30, 59, 60)] == [10, 10, 50, 50, 100]
        odd = on_probe_success(Circuit(expiry=NOW - 1, exists=True), NOW, Policy(slow_start_seconds=1), "p")[0]
        assert odd is not None and odd.slow_start == (NOW + 1, NOW + 1)

    def test_a_failure_during_a_slow_start_counts_and_an_opening_ends_it(self) -> None:
        ramping = Circuit(slow_start=(NOW + 10, NOW + 20), exists=True)
        counted, outcome = on_failure(ramping, NOW, POLICY)
        assert outcome is FailureOutcome.COUNTED and counted is not None and counted.slow_start == ramping.slow_start
        opened, outcome = on_failure(ramping, NOW, Policy())
        assert outcome is FailureOutcome.OPENED and opened is not None and opened.slow_start == ()
        assert opened.admitted_percent(NOW + 100) == 100  # half-open later: no share applies

    def test_a_circuit_without_expiry_writes_no_mirror(self) -> None:
        counted = changes(Circuit(), Circuit(failures=(NOW,), exists=True))
        assert (counted[model.EXPIRY], counted[model.OPEN_UNTIL]) == (None, None)

    def test_an_item_reads_with_defaults_and_without_what_is_not_valid(self) -> None:
        circuit = Circuit.from_item({model.KEY: "payment", model.FORCED: "MAYBE", model.EXPIRY: "tomorrow"})
        assert circuit == Circuit(exists=True)
        assert Circuit.from_item({model.KEY: "payment", model.FORCED: model.FORCED_CLOSED}).forced == "CLOSED"


def test_item_round_trip_keeps_every_field() -> None:
    circuit = Circuit(
        expiry=NOW,
        failures=(NOW - 3,),
        opens=2,
        probes={"e": NOW + 4},
        successes=1,
        slow_start=(NOW + 5, NOW + 9),
        version=7,
        exists=True,
    )
    item = {k: v for k, v in changes(Circuit(version=6), circuit).items() if v is not None}
    assert Circuit.from_item(item) == circuit
    assert item[model.OPEN_UNTIL] == "2027-01-15T08:00:00.000Z"


class TestFailedAttemptsAcrossTheFleet:
    """The retry storm's signal: failed attempts of all executions, before their retries."""

    POLICY = Policy(failed_attempts_threshold=10, failure_window_seconds=60)

    def test_below_the_threshold_nothing_is_written(self) -> None:
        circuit = Circuit(failed_attempts=9, failed_attempts_since=NOW - 1, exists=True)
        assert on_failed_attempts(circuit, NOW, self.POLICY) == (None, FailureOutcome.COUNTED)

    def test_the_threshold_within_the_window_opens_the_circuit(self) -> None:
        circuit = Circuit(failed_attempts=10, failed_attempts_since=NOW - 59, failures=(NOW - 5,), exists=True)
        after, outcome = on_failed_attempts(circuit, NOW, self.POLICY)
        assert outcome is FailureOutcome.OPENED
        assert after == Circuit(expiry=NOW + 30, opens=1, exists=True)  # counters cleared with the rest

    def test_a_count_that_began_before_the_window_starts_again(self) -> None:
        circuit = Circuit(failed_attempts=50, failed_attempts_since=NOW - 60, exists=True)
        after, outcome = on_failed_attempts(circuit, NOW, self.POLICY)
        assert outcome is FailureOutcome.COUNTED and after == Circuit(exists=True)

    def test_off_open_and_forced_circuits_are_left_alone(self) -> None:
        many = {"failed_attempts": 99, "failed_attempts_since": NOW, "exists": True}
        assert on_failed_attempts(Circuit(**many), NOW, Policy(failed_attempts_threshold=0))[0] is None
        assert on_failed_attempts(Circuit(expiry=NOW + 5, **many), NOW, self.POLICY) == (
            None,
            FailureOutcome.ALREADY_OPEN,
        )
        assert on_failed_attempts(Circuit(expiry=NOW - 5, **many), NOW, self.POLICY)[0] is None  # half-open
        forced = Circuit(forced=model.FORCED_CLOSED, **many)
        assert on_failed_attempts(forced, NOW, self.POLICY) == (None, FailureOutcome.FORCED)

    def test_an_opening_by_a_failed_execution_clears_the_count(self) -> None:
        circuit = Circuit(failed_attempts=4, failed_attempts_since=NOW - 1, exists=True)
        after, _ = on_failure(circuit, NOW, Policy())
        assert after is not None and (after.failed_attempts, after.failed_attempts_since) == (0, None)

    def test_the_workflows_clock_is_read_as_written(self) -> None:
        item = {model.FAILED_ATTEMPTS: 3, model.FAILED_ATTEMPTS_SINCE: "2027-01-15T08:00:00.123456+00:00"}
        assert Circuit.from_item(item).failed_attempts_since == 1_800_000_001  # rounded up to the second


class TestCorruptBookkeeping:
    """Attributes another tool wrote with the wrong type read as empty, listed for the log."""

    def test_wrong_types_read_as_empty_and_are_listed(self) -> None:
        item = {
            model.KEY: "payment",
            model.FAILURES: "1800000000",
            model.VERSION: "3",
            model.OPENS: "two",
            model.PROBES: ["x"],
            model.PROBE_SUCCESSES: True,
            model.ADMIT_10: "soon",
        }
        circuit = Circuit.from_item(item)
        assert circuit == Circuit(exists=True)
        assert dict(circuit.corrupt) == {
            model.FAILURES: "'1800000000'",
            model.VERSION: "'3'",
            model.OPENS: "'two'",
            model.PROBES: "['x']",
            model.PROBE_SUCCESSES: "True",
            model.ADMIT_10: "'soon'",
        }

    def test_a_failure_on_corrupt_bookkeeping_is_recorded(self) -> None:
        circuit = Circuit.from_item({model.KEY: "payment", model.FAILURES: ["a"], model.OPENS: -1})
        after, outcome = on_failure(circuit, NOW, Policy())
        assert outcome is FailureOutcome.OPENED and after is not None and after.expiry == NOW + 30

    def test_valid_bookkeeping_is_not_listed(self) -> None:
        item = {model.FAILURES: [Decimal(NOW)], model.VERSION: Decimal(2), model.PROBES: {"e": Decimal(NOW)}}
        circuit = Circuit.from_item(item)
        assert circuit.corrupt == () and circuit.failures == (NOW,) and circuit.version == 2


# --------------------------------------------------------------------------- property test


@dataclass
class ReferenceModel:
    """The breaker as the README describes it, written as plainly as possible."""

    threshold: int
    window: int
    open_seconds: int
    growth: float
    max_open: int
    probes_allowed: int
    lease: int
    successes_needed: int = 1
    slow_start: int = 0
    forced: str | None = None  # "open" or "closed"
    forced_until: int | None = None
    open_until: int | None = None  # set once opened; stays after expiry until a probe succeeds
    times_opened: int = 0
    failure_times: list[int] = field(default_factory=list)
    probe_leases: dict[str, int] = field(default_factory=dict)
    successes: int = 0
    admit_10_until: int | None = None
    admit_50_until: int | None = None

    @classmethod
    def for_policy(cls, policy: Policy, **state: Any) -> ReferenceModel:
        return cls(
            threshold=policy.failure_threshold,
            window=policy.failure_window_seconds,
            open_seconds=policy.open_duration_seconds,
            growth=policy.open_duration_growth,
            max_open=policy.max_open_duration_seconds,
            probes_allowed=policy.half_open_probes,
            lease=policy.probe_lease_seconds,
            successes_needed=policy.success_threshold,
            slow_start=policy.slow_start_seconds,
            **state,
        )

    def sees(self, now: int) -> str:
        if self.forced == "closed":
            return "forced closed"
        if self.forced == "open" and (self.forced_until is None or self.forced_until > now):
            return "forced open"
        if self.forced == "open":  # a forced open whose time is up behaves like an expired open
            return "half-open"
        if self.open_until is None:
            return "closed"
        return "open" if self.open_until > now else "half-open"

    def failure(self, now: int) -> str:
        seen = self.sees(now)
        if seen.startswith("forced"):
            return "forced"
        if seen == "open":
            return "already open"
        if seen == "half-open":
            period = min(self.open_seconds * self.growth**self.times_opened, max(self.max_open, self.open_seconds))
            self.open_until = now + int(-(-period // 1))
            self.times_opened += 1
            self.forced = self.forced_until = None
            self.probe_leases = {}
            self.failure_times = []
            self.successes = 0
            return "reopened"
        self.failure_times = [t for t in self.failure_times if t > now - self.window] + [now]
        if len(self.failure_times) >= self.threshold:
            self.open_until = now + self.open_seconds
            self.times_opened = 1
            self.failure_times = []
            self.successes = 0
            self.admit_10_until = self.admit_50_until = None
            return "opened"
        return "counted"

    def claim(self, execution: str, now: int) -> str:
        seen = self.sees(now)
        if seen in ("closed", "forced closed"):
            return "call"
        if seen in ("open", "forced open"):
            return "open"
        live = {e: t for e, t in self.probe_leases.items() if t > now}
        if execution in live:
            return "probe"
        if len(live) >= self.probes_allowed:
            return "busy"
        self.probe_leases = {**live, execution: now + self.lease}
        return "probe"

    def probe_succeeded(self, execution: str, now: int) -> str:
        if self.sees(now) != "half-open":
            return "not half-open"
        self.successes += 1
        if self.successes < self.successes_needed:
            self.probe_leases = {e: t for e, t in self.probe_leases.items() if t > now and e != execution}
            return "counted"
        self.forced = self.forced_until = self.open_until = None
        self.times_opened = self.successes = 0
        self.failure_times = []
        self.probe_leases = {}
        if not self.slow_start:
            return "closed"
        self.admit_10_until = now + -(-self.slow_start // 2)
        self.admit_50_until = now + self.slow_start
        return "slow start"

    def admitted(self, now: int) -> int:
        if self.sees(now) != "closed":
            return 100
        if self.admit_10_until is not None and self.admit_10_until > now:
            return 10
        if self.admit_50_until is not None and self.admit_50_until > now:
            return 50
        return 100


class BreakerMachine(RuleBasedStateMachine):
    """Random successes, failures, time steps and operator actions, applied to both."""

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.circuit = Circuit()
        self.policy = POLICY
        self.reference = ReferenceModel.for_policy(self.policy)
        self.executions = 0

    @initialize(
        policy=st.builds(
            Policy,
            open_duration_seconds=st.integers(1, 60),
            failure_threshold=st.integers(1, 3),
            failure_window_seconds=st.integers(1, 90),
            half_open_probes=st.integers(1, 3),
            probe_lease_seconds=st.integers(1, 40),
            open_duration_growth=st.sampled_from([1.0, 1.5, 2.0]),
            max_open_duration_seconds=st.integers(60, 200),
            success_threshold=st.integers(1, 3),
            slow_start_seconds=st.sampled_from([0, 1, 7, 40]),
        )
    )
    def choose_policy(self, policy: Policy) -> None:
        self.policy = policy
        self.reference = ReferenceModel.for_policy(policy)

    @rule(seconds=st.one_of(st.integers(0, 45), st.sampled_from([1, 30, 31, 61, 200])))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @rule()
    def callers_arrive_together(self) -> None:
        """Several executions reach the circuit at the same moment (the half-open race)."""
        for execution in ("a", "b", "c", "d"):
            self.an_execution_calls(execution, succeeds=False)

    @rule()
    def an_execution_fails(self) -> None:
        self.executions += 1
        after, outcome = on_failure(self.circuit, self.now, self.policy)
        assert outcome.value == self.reference.failure(self.now)
        if after is not None and after.expiry is not None:
            assert after.expiry == self.reference.open_until  # the same open period, grown the same way
        self.circuit = after or self.circuit

    @rule(execution=st.sampled_from(["a", "b", "c"]), succeeds=st.booleans())
    def an_execution_calls(self, execution: str, succeeds: bool) -> None:
        self.executions += 1
        after, decision = claim_probe(self.circuit, self.now, self.policy, execution)
        assert decision.value == self.reference.claim(execution, self.now)
        self.circuit = after or self.circuit
        if decision in (ProbeDecision.PROBE, ProbeDecision.CALL) and succeeds:
            after, outcome = on_probe_success(self.circuit, self.now, self.policy, execution)
            assert outcome.value == self.reference.probe_succeeded(execution, self.now)
            self.circuit = after or self.circuit

    @rule(seconds=st.one_of(st.none(), st.integers(1, 120)))
    def operator_forces_open(self, seconds: int | None) -> None:
        until = None if seconds is None else self.now + seconds
        self.circuit = Circuit(forced=model.FORCED_OPEN, expiry=until, version=self.circuit.version, exists=True)
        self.reference = _reset(self.reference, forced="open", forced_until=until, open_until=until)

    @rule()
    def operator_forces_closed(self) -> None:
        self.circuit = Circuit(forced=model.FORCED_CLOSED, exists=True)
        self.reference = _reset(self.reference, forced="closed")

    @rule()
    def operator_closes(self) -> None:
        self.circuit = Circuit()
        self.reference = _reset(self.reference)

    @invariant()
    def both_agree_on_what_a_caller_sees(self) -> None:
        assert self.circuit.state(self.now).value == self.reference.sees(self.now)
        assert self.circuit.admitted_percent(self.now) == self.reference.admitted(self.now)

    @invariant()
    def the_item_survives_a_round_trip(self) -> None:
        item = {k: v for k, v in changes(Circuit(), self.circuit).items() if v is not None}
        assert Circuit.from_item(item) == replace(self.circuit, version=1, exists=bool(item) or self.circuit.exists)

    @invariant()
    def the_item_stays_small(self) -> None:
        assert len(self.circuit.failures) < max(self.policy.failure_threshold, 1)
        assert len(self.circuit.active_probes(self.now)) <= self.policy.half_open_probes


_FRESH_STATE: dict[str, Any] = {
    "successes": 0,
    "admit_10_until": None,
    "admit_50_until": None,
    "forced": None,
    "forced_until": None,
    "open_until": None,
    "times_opened": 0,
    "failure_times": [],
    "probe_leases": {},
}


def _reset(reference: ReferenceModel, **state: Any) -> ReferenceModel:
    """The same model with all its state replaced: what an operator's write does."""
    return replace(reference, **{**_FRESH_STATE, **state})


BreakerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestBreakerAgainstReferenceModel = BreakerMachine.TestCase
