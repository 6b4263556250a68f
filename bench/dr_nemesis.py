"""DR nemesis: a seeded, bounded run of random faults while two application accounts write unique keys.

One command: `.venv/bin/python bench/dr_nemesis.py --faults 200 --seed 1`. Starts its own dev stack
(control plane, three versitygw centres, the operator) and two DRReplicas sharing one bucket
(prefixes `alpha/` and `beta/`, Automatic failover to the same-city centre). Two application accounts
write unique keys, each through its replica's published endpoint (the ConfigMap the operator writes),
and read every acknowledged write back. A probe tries, every PROBE_EVERY_S, a write as an application
account to each copy of each replica and counts the rounds in which two copies of one replica accepted.

Faults, drawn from the seed: manual failover, switchover and failback (to a random other copy), a kill of
a centre's object store (automatic failover follows when it is the active one) and its restart, a
network partition of a centre and its healing, and a SIGKILL of the operator with a restart. After each
fault the run waits (bounded) until no action runs.

Partitions (`--partitions`, on by default in the bench): each copy's store runs in a network namespace of
its own (bench/nemesis_net.py). A cut leaves the store running, reachable from inside its namespace
only. There, for each replica, a local application keeps writing to its own centre's store while it last
saw that centre published as active — it cannot see the endpoint move while cut off: the hard case for
fencing. The probe runs inside each namespace too, so a cut-off copy that accepts writes is seen.

At the end every centre is up, the operator running, every divergence check done; then every
acknowledged write must be at its replica's active copy, or among the divergent objects kept in
quarantine, byte for byte. Writes `bench/results/dr_nemesis.json`: faults by kind, acknowledged writes,
lost writes, probe rounds and time with two writable copies (and which copies), and the operator's own
`writableCopies` readings above 1. The bound in the same run: the number of writes and probes made.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from bench.nemesis_net import isolate, nemesis_link  # noqa: E402
from datacloud.adapters import s3  # noqa: E402
from datacloud.adapters.kube import Kube, NotFound  # noqa: E402
from datacloud.api.reserved import QUARANTINE_BUCKET  # noqa: E402
from datacloud.devstack import manifests  # noqa: E402
from datacloud.devstack.netns import Link  # noqa: E402
from datacloud.devstack.objectstore import Centre, StackError  # noqa: E402
from datacloud.devstack.process import Managed, free_port  # noqa: E402
from datacloud.devstack.stack import (  # noqa: E402
    OPERATOR_NAMESPACE,
    DevStack,
    centre_secret,
    operator_process,
)

COPIES = ("fz-prod", "fz-samecity-dr")
ACCOUNTS = {
    "alpha": ("nemesis-a", "nemesis-a-secret-0123456789"),
    "beta": ("nemesis-b", "nemesis-b-secret-0123"),
}
PROBE_EVERY_S = 0.25
SETTLE_S = 60.0
KINDS = ("failover", "switchover", "failback", "kill-centre", "restart-centre", "kill-operator")
NET_KINDS = (*KINDS, "partition")


def client(endpoint: str, key: str, secret: str) -> Any:
    creds = s3.S3Credentials(key, secret)
    return s3.client(
        s3.S3Endpoint(endpoint, "us-east-1", creds), connect_timeout=1, read_timeout=3, max_pool=2
    )


def root(centre: Centre) -> Any:
    return client(centre.endpoint, centre.access_key, centre.secret_key)


def replica_doc(namespace: str, name: str, bucket: str) -> dict[str, Any]:
    return {
        "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
        "kind": "DRReplica",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"centre": "fz-prod", "bucket": bucket, "prefix": name},
            "activeCentre": "fz-prod",
            "targets": [
                {
                    "name": "same-city",
                    "centre": "fz-samecity-dr",
                    "bucket": bucket,
                    "prefix": name,
                    "mode": "Continuous",
                    "rpoTarget": "30s",
                    "deletePolicy": "Mirror",
                }
            ],
            "failover": {"policy": "Automatic", "downFor": "1s", "maxDataLoss": "60s"},
        },
    }


def wait(check: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def published(kube: Kube, namespace: str, replica: str) -> dict[str, str] | None:
    """The replica's endpoint ConfigMap, as applications read it."""
    try:
        return kube.config_map_data(namespace, f"{replica}-endpoint")
    except Exception:  # the API server is always up here; anything else is a transient
        return None


@dataclass
class Ledger:
    """What the applications were told: acknowledged keys and their content digests."""

    acked: dict[str, str] = field(default_factory=dict)  # key → MD5 of the body (its single-part ETag)
    attempts: int = 0
    refused: int = 0
    readback_mismatch: int = 0
    local_attempts: int = 0  # by the applications inside a centre (partitions only)
    local_acked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Writer(threading.Thread):
    """One application account writing unique keys through its replica's published endpoint."""

    def __init__(
        self, kube: Kube, namespace: str, replica: str, ledger: Ledger, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace, self.replica, self.ledger, self.stop = (
            kube,
            namespace,
            replica,
            ledger,
            stop,
        )
        self.key, self.secret = ACCOUNTS[replica]

    def endpoint(self) -> dict[str, str] | None:
        return published(self.kube, self.namespace, self.replica)

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            published = self.endpoint()
            if not published:
                self.stop.wait(0.2)
                continue
            seq += 1
            prefix = published.get("prefix", "").rstrip("/")
            key = f"{prefix}/{self.key}/{seq:06d}-{os.urandom(3).hex()}"
            body = os.urandom(64) + key.encode()
            c = client(published["endpoint"], self.key, self.secret)
            with self.ledger.lock:
                self.ledger.attempts += 1
            try:
                c.put_object(Bucket=published["bucket"], Key=key, Body=body)
            except (BotoCoreError, ClientError):
                with self.ledger.lock:
                    self.ledger.refused += 1
                c.close()
                self.stop.wait(0.05)
                continue
            digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
            with self.ledger.lock:
                self.ledger.acked[key] = digest
            try:
                back = c.get_object(Bucket=published["bucket"], Key=key)["Body"].read()
                if hashlib.md5(back, usedforsecurity=False).hexdigest() != digest:
                    with self.ledger.lock:
                        self.ledger.readback_mismatch += 1
            except (BotoCoreError, ClientError):
                pass  # the copy went away between write and read: the final check decides
            c.close()
            self.stop.wait(0.05)


class Beliefs(threading.Thread):
    """What the applications inside each centre last saw published: refreshed only while their centre
    is joined to the host (the API server is there), frozen while it is cut off."""

    def __init__(self, kube: Kube, namespace: str, links: dict[str, Link], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace, self.links, self.stop = kube, namespace, links, stop
        self.active: dict[tuple[str, str], str] = {}  # (centre, replica) → the centre it believes active

    def run(self) -> None:
        while not self.stop.is_set():
            for replica in ACCOUNTS:
                endpoint = published(self.kube, self.namespace, replica)
                for name, link in self.links.items():
                    if not link.cut_off and endpoint:
                        self.active[(name, replica)] = endpoint.get("centre", "")
            self.stop.wait(0.2)


class LocalWriter(threading.Thread):
    """An application inside one centre writing to that centre's store while it believes it active."""

    def __init__(
        self,
        centre: Centre,
        link: Link,
        replica: str,
        beliefs: Beliefs,
        ledger: Ledger,
        bucket: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(daemon=True)
        self.centre, self.link, self.replica, self.beliefs = centre, link, replica, beliefs
        self.ledger, self.bucket, self.stop = ledger, bucket, stop
        self.key, self.secret = ACCOUNTS[replica]

    def put(self, key: str, body: bytes) -> bool:
        c = client(self.centre.endpoint, self.key, self.secret)
        try:
            c.put_object(Bucket=self.bucket, Key=key, Body=body)
            return True
        except (BotoCoreError, ClientError):
            return False
        finally:
            c.close()

    def run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            if self.beliefs.active.get((self.centre.name, self.replica)) != self.centre.name:
                self.stop.wait(0.2)
                continue
            seq += 1
            key = f"{self.replica}/local-{self.centre.name}/{seq:06d}-{os.urandom(3).hex()}"
            body = os.urandom(64) + key.encode()
            with self.ledger.lock:
                self.ledger.attempts += 1
                self.ledger.local_attempts += 1
            if self.link.run_inside(self.put, key, body):
                with self.ledger.lock:
                    self.ledger.acked[key] = hashlib.md5(body, usedforsecurity=False).hexdigest()
                    self.ledger.local_acked += 1
            else:
                with self.ledger.lock:
                    self.ledger.refused += 1
            self.stop.wait(0.1)


@dataclass
class ProbeLog:
    rounds: int = 0
    two_writable_rounds: int = 0
    two_writable_seconds: float = 0.0
    # Rounds whose first pass alone saw two copies writable, but the pass back did not confirm it: the
    # copies are probed one after another, so a switchover between two probes reads as two writers.
    unconfirmed_rounds: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)  # the first few, for the report


class Prober(threading.Thread):
    """Every PROBE_EVERY_S: each account tries a write to each copy of its replica."""

    def __init__(
        self, stack: DevStack, bucket: str, log: ProbeLog, stop: threading.Event, links: dict[str, Link]
    ) -> None:
        super().__init__(daemon=True)
        self.stack, self.bucket, self.log, self.stop, self.links = stack, bucket, log, stop, links

    def accepts(self, centre: Centre, replica: str) -> bool:
        """Probed from inside the centre's namespace when it has one: a cut-off copy still counts."""
        link = self.links.get(centre.name)
        return link.run_inside(self._accepts, centre, replica) if link else self._accepts(centre, replica)

    def _accepts(self, centre: Centre, replica: str) -> bool:
        key, secret = ACCOUNTS[replica]
        c = client(centre.endpoint, key, secret)
        try:
            c.put_object(Bucket=self.bucket, Key=f"{replica}/.nemesis-probe/{key}", Body=b"")
            return True
        except (BotoCoreError, ClientError):
            return False
        finally:
            c.close()

    def writable_together(self, replica: str) -> list[str]:
        """The copies that accepted a write at one moment. One pass probes the copies in turn; when it
        finds two or more writable, a second pass probes those in the reverse order: a copy writable in
        both passes around another copy's two probes was writable while that one was (A@t1, B@t2, B@t3,
        A@t4), whereas an action between two probes of one pass shows in the pass back."""
        first = [name for name in COPIES if self.accepts(self.stack.centres[name], replica)]
        if len(first) < 2:
            return first
        back = [name for name in reversed(first) if self.accepts(self.stack.centres[name], replica)]
        both = [name for name in first if name in back]
        if len(both) < 2:
            self.log.unconfirmed_rounds += 1
        return both

    def run(self) -> None:
        last = time.monotonic()
        while not self.stop.is_set():
            for replica in ACCOUNTS:
                writable = self.writable_together(replica)
                if len(writable) > 1:
                    self.log.two_writable_rounds += 1
                    self.log.two_writable_seconds += time.monotonic() - last
                    if len(self.log.seen) < 20:
                        self.log.seen.append({"replica": replica, "writable": writable, "at": time.time()})
            self.log.rounds += 1
            last = time.monotonic()
            self.stop.wait(PROBE_EVERY_S)


class Nemesis:
    """The fault schedule and the final check, on a running stack and operator."""

    def __init__(
        self,
        stack: DevStack,
        operator: Managed,
        kube: Kube,
        namespace: str,
        bucket: str,
        seed: int,
        links: dict[str, Link] | None = None,
    ) -> None:
        self.stack, self.operator, self.kube = stack, operator, kube
        self.links = links or {}
        self.namespace, self.bucket = namespace, bucket
        self.rng = random.Random(seed)
        self.faults: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.operator_split_readings = 0
        self.automatic: set[str] = set()  # automatic failovers seen (replica/requestId)
        self.request = 0

    # -- setup ----------------------------------------------------------------------------------------
    def setup(self) -> None:
        for centre in self.stack.centres.values():
            for key, secret in ACCOUNTS.values():
                try:
                    centre.add_user(key, secret)
                except StackError as e:
                    if "exist" not in str(e).lower():
                        raise
        statement = {
            "Sid": "apps",
            "Effect": "Allow",
            "Principal": {"AWS": [k for k, _ in ACCOUNTS.values()]},
            "Action": ["s3:*"],
            "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
        }
        for name in COPIES:
            c = root(self.stack.centres[name])
            try:
                c.create_bucket(Bucket=self.bucket)
            except ClientError as e:
                if not e.response["Error"]["Code"].startswith("BucketAlready"):
                    raise
            c.put_bucket_policy(
                Bucket=self.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
            )
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        self.stack.apply_documents(
            [namespace, *(replica_doc(self.namespace, r, self.bucket) for r in ACCOUNTS)]
        )
        for r in ACCOUNTS:
            if not wait(lambda r=r: self.status(r).get("phase") == "Protected", 120):
                raise RuntimeError(f"{r} not Protected: {self.status(r)}")

    def status(self, name: str) -> dict[str, Any]:
        try:
            return self.kube.get("drreplicas", name, self.namespace).get("status") or {}
        except NotFound:
            return {}

    # -- faults ---------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Copies the operator cannot reach: stopped, or cut off by a partition."""
        return [
            n
            for n in COPIES
            if not self.stack.centres[n].alive() or (n in self.links and self.links[n].cut_off)
        ]

    def bring_back(self, name: str) -> None:
        link = self.links.get(name)
        if link is not None and link.cut_off:
            link.heal()
        if not self.stack.centres[name].alive():
            self.restart(name)

    def action(self, replica: str, kind: str, to: str) -> None:
        self.request += 1
        patch = {
            "spec": {"action": {"type": kind, "targetCentre": to, "requestId": f"nemesis-{self.request}"}}
        }
        self.kube.custom.patch_namespaced_custom_object(
            "datacloud.fujian.gov.cn", "v1alpha1", self.namespace, "drreplicas", replica, patch
        )

    def inject(self) -> str:
        kind = self.rng.choice(NET_KINDS if self.links else KINDS)
        replica = self.rng.choice(sorted(ACCOUNTS))
        active = str(self.status(replica).get("activeCentre") or "fz-prod")
        other = next(c for c in COPIES if c != active)
        down = self.down()
        if kind in ("switchover", "failback", "failover") and down:
            kind = "restart-centre"  # planned actions need both copies; bring the dead one back first
        if kind == "restart-centre" and not down:
            kind = "kill-centre"
        if kind in ("kill-centre", "partition") and down:
            kind = "restart-centre"
        if kind == "failback" and active == "fz-prod":
            kind = "switchover"
        if kind == "failover":
            self.action(replica, "Failover", other)
        elif kind == "switchover":
            self.action(replica, "Switchover", other)
        elif kind == "failback":
            self.action(replica, "Failback", "fz-prod")
        elif kind == "kill-centre":
            self.stack.centres[self.rng.choice(COPIES)].stop()
            # Down long enough, some of the time, for an automatic failover (detection + downFor ≈ 3 s).
            time.sleep(self.rng.uniform(0.5, 8.0))
        elif kind == "partition":
            # Cut off long enough, some of the time, for an automatic failover across the partition.
            self.links[self.rng.choice(COPIES)].cut()
            time.sleep(self.rng.uniform(0.5, 8.0))
        elif kind == "restart-centre":
            for name in down:
                self.bring_back(name)
        elif kind == "kill-operator":
            self.operator.kill()
            time.sleep(self.rng.uniform(0.0, 1.0))
            self.operator.start()
        self.faults[kind] += 1
        return kind

    def restart(self, name: str) -> None:
        """Start a centre's store again. versitygw exits when the operator's event receiver does not
        answer its test event (the operator may be restarting): try again for a while."""
        for _ in range(30):
            try:
                self.stack.centres[name].restart()
                return
            except StackError:
                time.sleep(1.0)
        raise RuntimeError(f"{name} did not come back")

    def settle(self, timeout: float = SETTLE_S) -> bool:
        def quiet() -> bool:
            for r in ACCOUNTS:
                s = self.status(r)
                if (s.get("writableCopies") or 0) > 1:
                    self.operator_split_readings += 1
                a = s.get("action") or {}
                if str(a.get("requestId", "")).startswith("auto-"):
                    self.automatic.add(f"{r}/{a['requestId']}")
                if a.get("startedAt") and not a.get("finishedAt"):
                    return False
                spec_action = (self.kube.get("drreplicas", r, self.namespace).get("spec") or {}).get("action")
                if spec_action and spec_action.get("requestId") != s.get("handledRequestId"):
                    return False
            return True

        return bool(wait(quiet, timeout, 0.3))

    # -- the verdict ------------------------------------------------------------------------------------
    def heal(self) -> None:
        for name in self.down():
            self.bring_back(name)
        if not self.operator.alive():
            self.operator.start()

        def checked() -> bool:
            for r in ACCOUNTS:
                s = self.status(r)
                if any(d.get("state") == "Pending" for d in s.get("divergence") or []):
                    return False
                if (s.get("action") or {}).get("startedAt") and not (s.get("action") or {}).get("finishedAt"):
                    return False
            return True

        wait(checked, 180, 0.5)

    def verdict(self, ledger: Ledger) -> dict[str, Any]:
        lost: list[str] = []
        kept_found = 0
        for replica in ACCOUNTS:
            s = self.status(replica)
            active = self.stack.centres[str(s.get("activeCentre") or "fz-prod")]
            contents = self.contents(root(active), self.bucket, f"{replica}/")
            # Every epoch's quarantine in every centre (status lists only the recent records).
            kept: dict[str, str] = {}
            base = f"{self.namespace}/{replica}/"
            for name in COPIES:
                held = self.contents(root(self.stack.centres[name]), QUARANTINE_BUCKET, base)
                for k, digest in held.items():
                    epoch_dir, _, rest = k.partition("/")
                    if epoch_dir.startswith("e") and rest:
                        kept.setdefault(f"{replica}/{rest}", digest)
            for key, digest in ledger.acked.items():
                if not key.startswith(f"{replica}/"):
                    continue
                if contents.get(key) == digest:
                    continue
                if kept.get(key) == digest:
                    kept_found += 1
                    continue
                lost.append(key)
        return {"lost": lost, "keptInQuarantine": kept_found}

    @staticmethod
    def contents(c: Any, bucket: str, prefix: str) -> dict[str, str]:
        """Key → MD5 of the bytes held (the ETag of a single-part object; the bytes read otherwise)."""
        out = {}
        try:
            for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    etag = str(o.get("ETag", "")).strip('"')
                    if "-" in etag or len(etag) != 32:
                        body = c.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
                    out[o["Key"][len(prefix) :] if bucket == QUARANTINE_BUCKET else o["Key"]] = etag
        except ClientError as e:
            if e.response["Error"]["Code"] != "NoSuchBucket":
                raise
        return out


def log(line: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[nemesis {stamp}] {line}", file=sys.stderr, flush=True)


def run(
    stack: DevStack,
    operator: Managed,
    kube: Kube,
    namespace: str,
    bucket: str,
    faults: int,
    seed: int,
    links: dict[str, Link] | None = None,
) -> dict[str, Any]:
    """The whole schedule on a running stack (copies in network namespaces when `links` name them);
    the report (see the module docstring)."""
    links = links or {}
    nemesis = Nemesis(stack, operator, kube, namespace, bucket, seed, links)
    nemesis.setup()
    ledger, probes, stop = Ledger(), ProbeLog(), threading.Event()
    threads: list[threading.Thread] = [Writer(kube, namespace, r, ledger, stop) for r in ACCOUNTS]
    threads.append(Prober(stack, bucket, probes, stop, links))
    if links:
        beliefs = Beliefs(kube, namespace, links, stop)
        threads.append(beliefs)
        for name, link in links.items():
            for r in ACCOUNTS:
                threads.append(LocalWriter(stack.centres[name], link, r, beliefs, ledger, bucket, stop))
    for t in threads:
        t.start()
    started = time.monotonic()
    unsettled = 0
    schedule = []
    try:
        for i in range(faults):
            kind = nemesis.inject()
            schedule.append(kind)
            t0 = time.monotonic()
            settled = nemesis.settle()
            unsettled += not settled
            log(
                f"fault {i + 1}/{faults}: {kind}; {'settled' if settled else 'NOT settled'} in "
                f"{time.monotonic() - t0:.1f}s; acknowledged {len(ledger.acked)}"
            )
            time.sleep(nemesis.rng.uniform(0.5, 2.0))
        nemesis.heal()
        time.sleep(2.0)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    nemesis.heal()
    verdict = nemesis.verdict(ledger)
    return {
        "seed": seed,
        "faultsInjected": sum(nemesis.faults.values()),
        "faultsByKind": dict(sorted(nemesis.faults.items())),
        "automaticFailoversSeen": len(nemesis.automatic),
        "schedule": schedule,
        "faultsNotSettledWithin60s": unsettled,
        "writesAttempted": ledger.attempts,
        "writesRefused": ledger.refused,
        "acknowledgedWrites": len(ledger.acked),
        "partitions": bool(links),
        "localWritesAttempted": ledger.local_attempts,
        "localWritesAcknowledged": ledger.local_acked,
        "readbackMismatches": ledger.readback_mismatch,
        "lostWrites": len(verdict["lost"]),
        "lostKeys": verdict["lost"][:20],
        "acknowledgedKeptInQuarantine": verdict["keptInQuarantine"],
        "probeRounds": probes.rounds,
        "probeRoundsWithTwoWritableCopies": probes.two_writable_rounds,
        "probeRoundsUnconfirmedOnTheWayBack": probes.unconfirmed_rounds,
        "secondsWithTwoWritableCopies": round(probes.two_writable_seconds, 3),
        "twoWritableSeen": probes.seen,
        "operatorReportedTwoWritable": nemesis.operator_split_readings,
        "durationSeconds": round(time.monotonic() - started, 1),
    }


def setup_centres(stack: DevStack, namespace: str) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    docs += [manifests.datacentre(name, centre.endpoint) for name, centre in stack.centres.items()]
    stack.apply_documents(docs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=200, help="faults to inject (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule (default 1)")
    parser.add_argument(
        "--out", default=str(ROOT / "bench" / "results" / "dr_nemesis.json"), help="JSON report"
    )
    parser.add_argument(
        "--no-partitions", action="store_true", help="run the copies on the host's loopback, no partitions"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dr-nemesis-"))
    with contextlib.ExitStack() as cleanup:
        stack = DevStack(workdir, chart_objects=False).start(samples=False)
        cleanup.callback(shutil.rmtree, workdir, True)
        cleanup.callback(stack.stop)
        links: dict[str, Link] = {}
        if not args.no_partitions:
            for index, name in enumerate(COPIES):
                links[name] = cleanup.enter_context(nemesis_link(index + 1))
                isolate(stack.centres[name], links[name])
                stack.apply_documents([centre_secret(stack.centres[name], OPERATOR_NAMESPACE)])
        operator = operator_process(stack, workdir / "operator.log", free_port(), free_port()).start()
        cleanup.callback(operator.stop)
        setup_centres(stack, "nemesis")
        kube = Kube.from_kubeconfig(str(stack.kubeconfig))
        for name in stack.centres:
            wait(lambda n=name: (kube.get("datacentres", n).get("status") or {}).get("health") == "Up", 60)
        report = run(
            stack, operator, kube, "nemesis", f"nemesis-{os.urandom(3).hex()}", args.faults, args.seed, links
        )
    report["command"] = f"bench/dr_nemesis.py --faults {args.faults} --seed {args.seed}" + (
        " --no-partitions" if args.no_partitions else ""
    )
    report["loadAverage"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("schedule", "lostKeys")}, indent=2))
    return 0 if report["lostWrites"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
