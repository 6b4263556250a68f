"""The DR action state machine and dry-run plan."""

from datacloud.failover.actions import STEPS, failed, fresh_steps, mark, next_step, plan


def test_failover_has_no_final_sync_but_planned_actions_do() -> None:
    assert "FinalSync" not in STEPS["Failover"]
    assert STEPS["Switchover"].index("FinalSync") < STEPS["Switchover"].index("Promoting")
    assert STEPS["Failback"] == STEPS["Switchover"]


def test_progression_resumes_at_the_first_unfinished_step() -> None:
    steps = fresh_steps("Failover")
    assert next_step(steps) == "Fencing"
    steps = mark(steps, "Fencing", "Succeeded", "t1")
    steps = mark(steps, "Promoting", "Running", "t2")
    assert next_step(steps) == "Promoting"  # a restart here redoes Promoting, which is idempotent
    for name in STEPS["Failover"]:
        steps = mark(steps, name, "Succeeded", "t3")
    assert next_step(steps) is None
    assert failed(steps) is None


def test_a_failed_step_is_found_and_keeps_its_message() -> None:
    steps = mark(fresh_steps("Switchover"), "FinalSync", "Failed", "t", "target unreachable")
    bad = failed(steps)
    assert bad is not None
    assert bad["message"] == "target unreachable"


def test_plan_states_the_estimated_loss() -> None:
    lines = plan("Failover", "prod", "samecity", 4.2, ["prod", "remote"])
    assert lines[0].startswith("Fencing")
    assert lines[-1] == "Estimated data loss: 4.2s of writes"
    assert any("Reseeding: replicate samecity → prod, remote" in ln for ln in lines)
    assert plan("Switchover", "prod", "samecity", 4.2, [])[-1].endswith("none (planned, lossless)")
    assert "unknown" in plan("Failover", "a", "b", None, [])[-1]
