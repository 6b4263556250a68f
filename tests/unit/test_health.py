"""The centre health state machine."""

from datacloud.failover.health import HealthState, ProbeOutcome, next_health

OK = ProbeOutcome(True, 0.01)
SLOW = ProbeOutcome(True, 3.0)
FAIL = ProbeOutcome(False, 1.0, "Unreachable: ConnectTimeoutError")
NOT_TRIED = ProbeOutcome(False, 0.0, attempted=False)


def run(outcomes: list[ProbeOutcome], threshold: int = 3) -> list[str]:
    state, seen = HealthState(), []
    for outcome in outcomes:
        state = next_health(state, outcome, threshold, degraded_latency_s=2.0)
        seen.append(state.health)
    return seen


def test_fast_answers_are_up_and_slow_ones_degraded() -> None:
    assert run([OK, SLOW, OK]) == ["Up", "Degraded", "Up"]


def test_down_only_after_threshold_consecutive_failures() -> None:
    assert run([OK, FAIL, FAIL, FAIL, FAIL]) == ["Up", "Degraded", "Degraded", "Down", "Down"]


def test_one_success_resets_the_failure_count() -> None:
    assert run([OK, FAIL, FAIL, OK, FAIL, FAIL]) == [
        "Up",
        "Degraded",
        "Degraded",
        "Up",
        "Degraded",
        "Degraded",
    ]


def test_threshold_of_one_goes_down_at_once() -> None:
    assert run([OK, FAIL], threshold=1) == ["Up", "Down"]


def test_a_centre_never_seen_answering_stays_unknown_until_down() -> None:
    assert run([FAIL, FAIL, FAIL]) == ["Unknown", "Unknown", "Down"]


def test_probe_not_attempted_is_unknown_and_keeps_the_count() -> None:
    state = next_health(HealthState("Degraded", 2), NOT_TRIED, 3, 2.0)
    assert state == HealthState("Unknown", 2)
