"""Pure DR renderers: endpoint publication, sync Jobs, audit records."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.builders.dr import audit_record, endpoint_configmap, endpoint_service, job_name, sync_job

BODY = {"metadata": {"name": "records", "namespace": "dr", "uid": "u-1"}}


def test_endpoint_configmap_and_service_name_the_active_copy() -> None:
    cm = endpoint_configmap(BODY, "samecity", "http://127.0.0.1:7070", "data-near", "p/", 3)
    assert cm["data"] == {
        "centre": "samecity",
        "endpoint": "http://127.0.0.1:7070",
        "bucket": "data-near",
        "prefix": "p/",
        "fencingEpoch": "3",
    }
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    svc = endpoint_service(BODY, "https://oss.fz-dr.dc.fujian.gov.cn")
    assert svc["spec"]["externalName"] == "oss.fz-dr.dc.fujian.gov.cn"
    assert svc["spec"]["ports"][0]["port"] == 443
    assert endpoint_service(BODY, "http://127.0.0.1:7070")["spec"]["ports"][0]["port"] == 7070


def test_sharded_sync_job_is_indexed() -> None:
    job = sync_job(BODY, "far", "20260101t0200", "img:1", ["a", "b"], 4, "datacloud-sync")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 4
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--shard", "$(JOB_COMPLETION_INDEX)/4"]
    single = sync_job(BODY, "far", "x", "img:1", ["a"], 1, "sa")
    assert "completionMode" not in single["spec"]
    assert "--shard" not in single["spec"]["template"]["spec"]["containers"][0]["args"]
    assert len(job["metadata"]["name"]) <= 63


def test_audit_keys_sort_by_time_and_carry_the_request() -> None:
    key1, body = audit_record(
        "records", "dr", {"type": "Failover", "requestId": "CHG-1"}, 2, "2026-01-01T00:00:00Z"
    )
    key2, _ = audit_record(
        "records", "dr", {"type": "Failback", "requestId": "CHG-2"}, 3, "2026-01-02T00:00:00Z"
    )
    assert key1 < key2
    assert "CHG-1" in key1
    assert json.loads(body)["fencingEpoch"] == 2


def test_every_attempt_to_record_one_action_writes_the_same_key() -> None:
    """A finish retried after a kill or a refused status write finds its record (put if absent), so
    the key is the action's, not the attempt's: its start, type, request and epoch."""
    action = {"type": "Failover", "requestId": "CHG-9", "startedAt": "2026-01-01T00:00:00Z"}
    first, body1 = audit_record("records", "dr", action, 4, "2026-01-01T00:00:09Z")
    again, body2 = audit_record("records", "dr", action, 4, "2026-01-01T00:01:30Z")
    assert first == again
    assert "2026-01-01T00:00:00Z-Failover-CHG-9-4" in first
    assert json.loads(body1)["recordedAt"] != json.loads(body2)["recordedAt"]
    assert audit_record("records", "dr", action, 5, "2026-01-01T00:01:30Z")[0] != first


REPLICA_NAMES = st.from_regex(r"[a-z]([-a-z0-9]{0,52}[a-z0-9])?", fullmatch=True)
TARGET_NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?", fullmatch=True).filter(
    lambda t: ".." not in t and ".-" not in t and "-." not in t
)
RUN_IDS = st.datetimes().map(lambda t: t.strftime("%Y%m%dt%H%M"))
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@settings(max_examples=400)
@given(REPLICA_NAMES, TARGET_NAMES, RUN_IDS, RUN_IDS)
def test_job_names_are_valid_and_every_run_has_its_own(replica: str, target: str, one: str, two: str) -> None:
    """Any replica and target name the API admits: a valid Job name of at most 63 characters, ending in
    the run, so two runs never share one (the second would be refused as a change to the first)."""
    first, second = job_name(replica, target, one), job_name(replica, target, two)
    for name in (first, second):
        assert len(name) <= 63, name
        assert DNS_SUBDOMAIN.match(name), name
    assert (first == second) == (one == two)
    assert first.endswith(one)


def test_long_names_of_two_targets_stay_apart() -> None:
    replica = "r" * 54
    near = job_name(replica, "n" * 60 + "-a", "20260101t0200")
    far = job_name(replica, "n" * 60 + "-b", "20260101t0200")
    assert near != far
    assert len(near) == len(far) == 63
