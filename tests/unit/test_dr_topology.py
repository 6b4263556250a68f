"""Where data flows before and after a failover."""

import pytest

from datacloud.failover.topology import SOURCE, active_copy, flows
from tests.support.dr_status import SPEC


def test_from_the_source_flows_follow_the_spec() -> None:
    out = {f.target: f for f in flows(SPEC, "prod")}
    assert set(out) == {"near", "far"}
    assert (out["near"].mode, out["near"].rpo_s, out["near"].dst.bucket) == ("Continuous", 30.0, "data-near")
    assert (out["far"].mode, out["far"].schedule) == ("Scheduled", "0 2 * * *")
    assert all(f.src.bucket == "data" for f in out.values())


def test_after_failover_the_promoted_copy_feeds_the_old_source_continuously() -> None:
    out = {f.target: f for f in flows(SPEC, "samecity")}
    assert set(out) == {SOURCE, "far"}
    assert out[SOURCE].mode == "Continuous"
    assert out[SOURCE].rpo_s == 30.0
    assert out[SOURCE].dst.centre == "prod"
    assert out["far"].src.bucket == "data-near"
    assert out["far"].mode == "Scheduled"


def test_unknown_active_centre_is_refused() -> None:
    with pytest.raises(ValueError, match="no copy"):
        active_copy(SPEC, "elsewhere")
