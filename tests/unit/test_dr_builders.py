"""Pure DR renderers: endpoint publication, sync Jobs, audit records."""

import json

from datacloud.builders.dr import audit_record, endpoint_configmap, endpoint_service, sync_job

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
