"""The replication engine against rclone and against physical bounds, on versitygw pairs over loopback.

    .venv/bin/python bench/sync_bench.py [--phases small,large,noop,continuous] [--concurrency 16]
        [--small 20000] [--small-rounds 7] [--rounds 3] [--large 20] [--large-size 64Mi]
        [--noop 100000] [--rate 50] [--duration 60]

Each phase starts its own pair of versitygw centres in a temporary directory and removes them after.
- small: `--small` objects of 4-64 KiB; a full copy into an empty bucket by `datacloud sync` (as a
  subprocess, start-up included), by `rclone sync` (Debian's rclone, `--transfers` and `--checkers`
  equal to our concurrency) and by MinIO's `mc mirror` (its own worker pool: no flag sets it; built
  with `GOBIN=DIR go install github.com/minio/mc@latest`, found in the tools directory or on PATH).
  Figures: objects/s, ours over each peer, and CPU per object for every tool: the client's, and the
  client's and both gateways' together (the copy saturates a small machine's cores, so the wall time
  follows the total). The race runs `--small-rounds` times (`--rounds` for large) with the order
  rotated; ratios are the median of the rounds' ratios (each round compares neighbours in time on a
  shared machine, so one round disturbed by another process does not decide), times and CPU the
  median over the rounds; every round is recorded with the load average when it began.
- large: `--large` objects of `--large-size`; the same three copies, plus the target server's raw PUT
  ceiling as a fourth runner in every round's rotation: the same bytes PUT from memory by the lean
  client in this process, the same request and number in flight, no source store read and no per-byte
  work in user space (`put_ceiling`). Each copy is checked and removed as soon as it is made, so no run
  pays for the kernel writing back an earlier one's data. Figures: MB/s and CPU of each (the
  ceiling's client CPU is this process's), ours over each peer and over the ceiling as the median of
  the rounds' ratios.
- noop: `--noop` objects (1-4 KiB), copied once by `datacloud sync` (that copy's time and RSS are
  reported too), then a second `datacloud sync` that finds nothing to do, against the bound: listing both
  buckets side by side and nothing else, with the same listing client, in one process.
- continuous: a source centre that sends bucket notifications to `datacloud`'s receiver; a writer PUTs
  `--rate` objects per second for `--duration` seconds while the replicator follows (in a child process,
  bench/sync_follow.py). Lag per object: from the writer's acknowledgement to the copy being complete.
Every copy is checked against its source (keys and sizes) before a number is reported. Peak RSS is
sampled every 50 ms (psutil) for each process measured. JSON goes to bench/results/sync.json.
Before any phase the `datacloud` package the measured commands import is byte-compiled, as installing it
does (the image's `pip install`): with an editable install and PYTHONDONTWRITEBYTECODE=1, as here, every
`datacloud sync` started would otherwise compile its own modules from source again (about 40 ms of CPU).
- startup: `datacloud sync --help` and a sync of two empty buckets, each run 7 times as a new process
  (the installed `datacloud` command): wall seconds (min and median) and CPU seconds (median), beside
  the floor measured the same way: the interpreter importing argparse, dataclasses, json and logging.
- clients: the A/B behind the lean S3 path: `--clients` small objects copied GET -> PUT in this process
  by boto3 and by the lean client (bare calls, and through the engine's `Copier`), the same keys and
  concurrency; CPU per object and objects/s of each. JSON goes to bench/results/s3-clients.json, whose
  `layers` section (the lean threaded client against the event-loop one it replaced) is kept.
Targets (issue 16): small >= 1.5x rclone and >= 1.25x mc mirror; large >= 0.9x rclone and >= 0.8x the
ceiling; noop <= 1.3x the listing bound; continuous p99 <= 1 s; client CPU per small object <= 0.35 ms;
RSS <= 300 MB at 100,000 objects.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from datacloud.adapters.s3 import S3Credentials, S3Endpoint, client
from datacloud.adapters.s3_wire import WireClient
from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import tool
from datacloud.replication.listing import iter_objects, prefetched
from datacloud.replication.throttle import parse_size

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
MIB = 1024 * 1024
PHASES = ("startup", "small", "large", "noop", "continuous")
EXTRA_PHASES = ("clients",)  # run when named: its result goes to its own file


def endpoint(centre: Centre) -> S3Endpoint:
    return S3Endpoint(centre.endpoint, "us-east-1", S3Credentials(centre.access_key, centre.secret_key))


def wire(centre: Centre) -> WireClient:
    return WireClient(endpoint(centre))


class Pair:
    """Two centres and credentials files for the CLI; rclone's remotes come from the environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.src = Centre("bench-src", root / "src").start()
        self.dst = Centre("bench-dst", root / "dst").start()
        self.creds: dict[str, Path] = {}
        for name, centre in (("src", self.src), ("dst", self.dst)):
            self.creds[name] = root / f"{name}.json"
            self.creds[name].write_text(
                json.dumps({"accessKeyId": centre.access_key, "secretAccessKey": centre.secret_key})
            )
        self.s3_src, self.s3_dst = wire(self.src), wire(self.dst)

    def stop(self) -> None:
        self.src.stop()
        self.dst.stop()

    def buckets(self, src: list[str], dst: list[str]) -> None:
        for centre, names in ((self.src, src), (self.dst, dst)):
            s3 = client(endpoint(centre))  # boto3: bucket creation is not on any measured path
            for name in names:
                s3.create_bucket(Bucket=name)

    def ours(self, src_bucket: str, dst_bucket: str, concurrency: int, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "datacloud.replication.cli",
            f"{self.src.endpoint}/{src_bucket}",
            f"{self.dst.endpoint}/{dst_bucket}",
            "--src-credentials",
            str(self.creds["src"]),
            "--dst-credentials",
            str(self.creds["dst"]),
            "--concurrency",
            str(concurrency),
            *extra,
        ]

    def rclone(self, src_bucket: str, dst_bucket: str, concurrency: int) -> list[str]:
        return [
            tool("rclone"),
            "sync",
            f"src:{src_bucket}",
            f"dst:{dst_bucket}",
            "--transfers",
            str(concurrency),
            "--checkers",
            str(concurrency),
            "--s3-no-check-bucket",
        ]

    def mc(self, src_bucket: str, dst_bucket: str) -> list[str]:
        # mc sizes its own pool of workers; no flag sets it any more.
        return [mc_binary(), "mirror", "--quiet", f"src/{src_bucket}", f"dst/{dst_bucket}"]

    def mc_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env["MC_CONFIG_DIR"] = str(self.root / "mc-config")
        for name, centre in (("src", self.src), ("dst", self.dst)):
            host = centre.endpoint.removeprefix("http://")
            env[f"MC_HOST_{name}"] = f"http://{centre.access_key}:{centre.secret_key}@{host}"
        return env

    def rclone_env(self) -> dict[str, str]:
        # rclone's AWS SDK refuses to start when AWS_CA_BUNDLE is set; the centres are plain HTTP.
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        for name, centre in (("SRC", self.src), ("DST", self.dst)):
            prefix = f"RCLONE_CONFIG_{name}_"
            env.update(
                {
                    prefix + "TYPE": "s3",
                    prefix + "PROVIDER": "Other",
                    prefix + "ENDPOINT": centre.endpoint,
                    prefix + "ACCESS_KEY_ID": centre.access_key,
                    prefix + "SECRET_ACCESS_KEY": centre.secret_key,
                    prefix + "REGION": "us-east-1",
                    prefix + "FORCE_PATH_STYLE": "true",
                }
            )
        return env


@contextmanager
def pair_in_tmp() -> Iterator[Pair]:
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        pair = Pair(Path(tmp))
        try:
            yield pair
        finally:
            pair.stop()


class PeakRss:
    """Samples a process tree's resident memory every 50 ms; `peak_mb` when done.

    The tree's members are looked up once a second, not at every sample: finding a process's children
    reads every process's `/proc` entry (2.5 ms of CPU on this machine, 5% of a core at 20 samples a
    second), CPU the measured tool would lose to the bench while the ceiling, run in this process,
    does not. (None of the measured tools starts children; the lookup is there in case one does.)
    """

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        procs = [self._proc]
        for tick in itertools.count():
            if self._stop.is_set():
                return
            try:
                if tick % 20 == 0:
                    procs = [self._proc, *self._proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak / MIB, 1)


Measured = tuple[float, str, float, dict[str, float]]  # seconds, stdout, peak RSS MiB, CPU seconds


class CpuMeter:
    """CPU seconds used by the next command and by both gateways while it ran (where the time goes)."""

    def __init__(self, pair: Pair) -> None:
        self._gateways = [psutil.Process(c.process.pid) for c in (pair.src, pair.dst) if c.process]
        self._start = self._now()

    def _now(self) -> list[float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        gateways = [sum(p.cpu_times()[:2]) for p in self._gateways]
        return [children.ru_utime + children.ru_stime, *gateways]

    def read(self) -> dict[str, float]:
        used = [round(b - a, 2) for a, b in zip(self._start, self._now(), strict=True)]
        return dict(zip(("client", "source_gateway", "target_gateway"), used, strict=True))


def mc_binary() -> str:
    try:
        return tool("mc")
    except Exception:
        sys.exit("mc not found: GOBIN=~/.cache/datacloud-tools/bin go install github.com/minio/mc@latest")


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Run a command to the end: (seconds, stdout, peak RSS in MiB); a failure ends the bench."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    rss = PeakRss(proc.pid)
    out, err = proc.communicate(timeout=3600)
    elapsed = time.monotonic() - started
    peak = rss.stop()
    if proc.returncode != 0:
        sys.exit(f"{Path(argv[0]).name} failed ({proc.returncode}):\n{err[-3000:]}")
    return elapsed, out, peak


def fill(
    client: WireClient, bucket: str, items: list[tuple[str, int]], blob: bytes, threads: int = 32
) -> int:
    """PUT `items` (key, size) with contents cut from `blob` at a per-key offset; returns the bytes."""

    def put(item: tuple[str, int]) -> None:
        key, size = item
        offset = zlib.crc32(key.encode()) % max(1, len(blob) - size) if size < len(blob) else 0
        client.put_object(Bucket=bucket, Key=key, Body=blob[offset : offset + size])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, items))
    return sum(size for _, size in items)


def listing(client: WireClient, bucket: str) -> dict[str, int]:
    return {o.key: o.size for o in iter_objects(client, bucket, "", where=bucket)}


def must_match(pair: Pair, src_bucket: str, *dst_buckets: str) -> None:
    expected = listing(pair.s3_src, src_bucket)
    for bucket in dst_buckets:
        found = listing(pair.s3_dst, bucket)
        if found != expected:
            missing = len(set(expected) - set(found))
            sys.exit(f"bucket {bucket} does not match the source: {missing} missing of {len(expected)}")


def summary(out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out)
    return data


def say(text: str) -> None:
    print(text, flush=True)


TOOLS = ("ours", "rclone", "mc")


def target_buckets(rounds: int) -> list[str]:
    return [f"by-{who}-{r}" for r in range(rounds) for who in TOOLS]


Round = dict[str, Any]  # one round: the load when it began and each tool's Measured


def race(
    pair: Pair,
    phase: str,
    args: argparse.Namespace,
    rounds: int,
    ceiling: Callable[[], None] | None = None,
    empty_after: bool = False,
) -> list[Round]:
    """`datacloud sync`, `rclone sync` and `mc mirror` of the source bucket, each into its own empty
    bucket, one after the other on the same data, `rounds` times with the order rotated (the machine
    is shared: a ratio within one round compares neighbours in time); every copy checked.

    `ceiling`: a bound run in this process, in the rotation like a tool (its CPU is this process's).
    `empty_after`: each copy is checked and removed as soon as it is made, so no run pays for writing
    back an earlier run's gigabytes (the kernel flushes dirty pages behind the writer's back).
    Returns every round: the 1-minute load average when it began and each tool's run."""
    done: list[Round] = []
    names = (*TOOLS, "ceiling") if ceiling else TOOLS
    for r in range(rounds):
        commands = {
            "ours": (pair.ours("source", f"by-ours-{r}", args.concurrency), None),
            "rclone": (pair.rclone("source", f"by-rclone-{r}", args.concurrency), pair.rclone_env()),
            "mc": (pair.mc("source", f"by-mc-{r}"), pair.mc_env()),
        }
        order = names[r % len(names) :] + names[: r % len(names)]
        this_round: Round = {"load_1m": round(os.getloadavg()[0], 2)}
        for who in order:
            say(f"{phase}: round {r + 1}, {who} ...")
            meter = CpuMeter(pair)
            if who == "ceiling" and ceiling is not None:
                cpu0, started = time.process_time(), time.monotonic()
                ceiling()
                seconds = time.monotonic() - started
                used = {**meter.read(), "client": round(time.process_time() - cpu0, 2)}
                this_round[who] = (seconds, "", 0.0, used)
                bucket = "ceiling"
            else:
                argv, env = commands[who]
                seconds, out, rss = run(argv, env)
                this_round[who] = (seconds, out, rss, meter.read())
                bucket = f"by-{who}-{r}"
            say(f"  {seconds:.1f}s, CPU {this_round[who][3]}")
            if empty_after:
                must_match(pair, "source", bucket)
                for key in listing(pair.s3_dst, bucket):
                    pair.s3_dst.delete_object(Bucket=bucket, Key=key)
        done.append(this_round)
        if not empty_after:
            must_match(pair, "source", *(f"by-{who}-{r}" for who in TOOLS))
    return done


def fastest(rounds: list[Round], who: str) -> Measured:
    best: Measured = min((r[who] for r in rounds), key=lambda m: m[0])
    return best


def median_ratios(per_round: list[dict[str, float]]) -> dict[str, float]:
    return {name: round(statistics.median(r[name] for r in per_round), 3) for name in per_round[0]}


def figures(runs: list[Measured], objects: int, nbytes: int) -> dict[str, Any]:
    """One tool over all rounds: the median run's speed and CPU, and the spread of its times.

    CPU per object is counted for the client and for the client and both gateways together: on a
    machine whose cores the copy saturates, the wall time follows the total."""
    seconds = statistics.median(m[0] for m in runs)
    cpu = {part: round(statistics.median(m[3][part] for m in runs), 2) for part in runs[0][3]}
    totals = [sum(m[3].values()) for m in runs]
    return {
        "seconds": round(seconds, 2),
        "seconds_min_max": [round(min(m[0] for m in runs), 2), round(max(m[0] for m in runs), 2)],
        "objects_per_s": round(objects / seconds, 1),
        "mb_per_s": round(nbytes / MB / seconds, 1),
        "peak_rss_mb": max(m[2] for m in runs),
        "cpu_seconds": cpu,
        "client_cpu_ms_per_object": round(cpu["client"] * 1000 / objects, 3),
        "total_cpu_ms_per_object": round(statistics.median(totals) * 1000 / objects, 3),
    }


def ratios(measured: Round) -> dict[str, float]:
    """Ours over each peer, as speed ratios (their time over ours)."""
    ours = measured["ours"][0]
    peers = [who for who in (*TOOLS, "ceiling") if who != "ours" and who in measured]
    return {f"ours_over_{who}": round(measured[who][0] / ours, 3) for who in peers}


def round_record(one: Round, objects: int) -> dict[str, Any]:
    """One round as recorded: its load, each tool's seconds and CPU per object (client, total)."""
    record: dict[str, Any] = {"load_1m": one["load_1m"], **ratios(one)}
    for who in [w for w in (*TOOLS, "ceiling") if w in one]:
        seconds, _, _, cpu = one[who]
        record[who] = {
            "seconds": round(seconds, 2),
            "client_cpu_ms_per_object": round(cpu["client"] * 1000 / objects, 3),
            "total_cpu_ms_per_object": round(sum(cpu.values()) * 1000 / objects, 3),
        }
    return record


# -- phases ----------------------------------------------------------------------------------------


def small_phase(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(6)  # the same data set every run
    items = [
        (f"small/{i // 1000:03d}/{i:06d}.bin", rng.randint(4 * 1024, 64 * 1024)) for i in range(args.small)
    ]
    with pair_in_tmp() as pair:
        pair.buckets(["source"], target_buckets(args.small_rounds))
        say(f"small: writing {len(items)} objects of 4-64 KiB ...")
        size = fill(pair.s3_src, "source", items, os.urandom(128 * 1024))
        rounds = race(pair, "small", args, args.small_rounds)
    copied = summary(fastest(rounds, "ours")[1])["objects_copied"]
    if copied != len(items):
        sys.exit(f"small: datacloud copied {copied} of {len(items)}")
    per_round = [ratios(r) for r in rounds]
    return {
        "objects": len(items),
        "bytes": size,
        "rounds": len(rounds),
        "figures": "per tool: the median over the rounds; ratios: the median of the rounds' ratios",
        **{who: figures([r[who] for r in rounds], len(items), size) for who in TOOLS},
        "per_round": [round_record(r, len(items)) for r in rounds],
        "ratios": median_ratios(per_round),
        "targets": {
            "ours_over_rclone": ">= 1.5",
            "ours_over_mc": ">= 1.25",
            "client_cpu_ms_per_object": "<= 0.35",
        },
    }


def put_ceiling(pair: Pair, items: list[tuple[str, int]], blob: bytes, concurrency: int) -> None:
    """PUT `items` into the target from memory, `concurrency` at a time: what the server can take.

    The request the engine makes for objects of this size (one PUT each, unsigned payload, the same
    `Content-Length`), its body sent 1 MiB at a time straight from the one buffer in memory: per byte
    this client does nothing but the kernel's copy into the socket, and no source store is read.
    """
    view = memoryview(blob)

    def put(item: tuple[str, int]) -> None:
        key, size = item
        chunks = (view[at : min(at + MIB, size)] for at in range(0, size, MIB))
        pair.s3_dst.put_object_stream(Bucket="ceiling", Key=key, Chunks=chunks, ContentLength=size)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(put, items))


def large_phase(args: argparse.Namespace) -> dict[str, Any]:
    size = parse_size(args.large_size)
    items = [(f"large/part-{i:03d}.parquet", size) for i in range(args.large)]
    blob = os.urandom(size)
    with pair_in_tmp() as pair:
        pair.buckets(["source"], [*target_buckets(args.rounds), "ceiling"])
        say(f"large: writing {len(items)} x {args.large_size} ...")
        fill(pair.s3_src, "source", items, blob, threads=4)
        rounds = race(
            pair,
            "large",
            args,
            args.rounds,
            ceiling=lambda: put_ceiling(pair, items, blob, args.concurrency),
            empty_after=True,
        )
    total = size * len(items)
    if summary(fastest(rounds, "ours")[1])["objects_copied"] != len(items):
        sys.exit("large: datacloud did not copy every object")
    per_round = [ratios(r) for r in rounds]
    return {
        "objects": len(items),
        "bytes": total,
        "figures": "per tool: the median over the rounds; ratios: the median of the rounds' ratios",
        **{who: figures([r[who] for r in rounds], len(items), total) for who in (*TOOLS, "ceiling")},
        "per_round": [round_record(r, len(items)) for r in rounds],
        "ratios": median_ratios(per_round),
        "targets": {"ours_over_rclone": ">= 0.9", "ours_over_ceiling": ">= 0.8"},
    }


def list_both(pair: Pair, src_bucket: str, dst_bucket: str) -> float:
    """Seconds to page through both buckets side by side, as the engine does, and do nothing else."""
    started = time.monotonic()
    halt = threading.Event()
    sides = [
        prefetched(iter_objects(client, bucket, "", where=bucket), stop=halt)
        for client, bucket in ((pair.s3_src, src_bucket), (pair.s3_dst, dst_bucket))
    ]
    # Consumed in step, as the merge-join does: each prefetch runs only a bounded way ahead, so counting
    # one side to its end before the other would list them one after the other.
    counted = [0, 0]
    for source, target in itertools.zip_longest(*sides):
        counted[0] += source is not None
        counted[1] += target is not None
    if counted[0] != counted[1]:
        sys.exit(f"noop: the buckets differ before the re-sync ({counted})")
    return time.monotonic() - started


def noop_phase(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    items = [(f"many/{i // 1000:03d}/{i:07d}.json", rng.randint(1024, 4 * 1024)) for i in range(args.noop)]
    with pair_in_tmp() as pair:
        pair.buckets(["source"], ["copy"])
        say(f"noop: writing {len(items)} objects of 1-4 KiB ...")
        fill(pair.s3_src, "source", items, os.urandom(16 * 1024))
        say("noop: first copy by datacloud sync ...")
        first_s, first_out, first_rss = run(pair.ours("source", "copy", args.concurrency))
        say(f"  {first_s:.1f}s\nnoop: listing bound ...")
        bound_s = list_both(pair, "source", "copy")
        say(f"  {bound_s:.1f}s\nnoop: datacloud re-sync ...")
        noop_s, noop_out, noop_rss = run(pair.ours("source", "copy", args.concurrency))
        say(f"  {noop_s:.1f}s")
        bound_again = list_both(pair, "source", "copy")
        must_match(pair, "source", "copy")
    if summary(first_out)["objects_copied"] != len(items) or summary(noop_out)["objects_copied"] != 0:
        sys.exit("noop: unexpected copy counts")
    bound = min(bound_s, bound_again)
    return {
        "objects": len(items),
        "first_copy": {
            "seconds": round(first_s, 2),
            "objects_per_s": round(len(items) / first_s, 1),
            "peak_rss_mb": first_rss,
        },
        "resync": {"seconds": round(noop_s, 2), "peak_rss_mb": noop_rss},
        "list_both_seconds": {"before": round(bound_s, 2), "after": round(bound_again, 2)},
        "ratio_resync_over_listing": round(noop_s / bound, 3),
        "targets": {"ratio": "<= 1.3", "peak_rss_mb": "<= 300"},
    }


def continuous_phase(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sync-follow-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [
            sys.executable,
            str(ROOT / "bench/sync_follow.py"),
            "--root",
            tmp,
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--concurrency",
            str(args.concurrency),
            "--out",
            str(out),
        ]
        say(f"continuous: {args.rate} PUT/s for {args.duration}s ...")
        _, _, _ = run(argv)
        result: dict[str, Any] = json.loads(out.read_text())
    say(f"  lag p50 {result['lag_seconds']['p50']}s p99 {result['lag_seconds']['p99']}s")
    return result


def startup_phase(args: argparse.Namespace) -> dict[str, Any]:
    command = str(Path(sys.executable).with_name("datacloud"))

    def timed(argv: list[str]) -> dict[str, float]:
        walls, cpus = [], []
        for _ in range(7):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            subprocess.run(argv, check=True, capture_output=True)
            walls.append(time.monotonic() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return {
            "wall_min_s": round(min(walls), 3),
            "wall_median_s": round(statistics.median(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3),
        }

    with pair_in_tmp() as pair:
        pair.buckets(["empty"], ["empty-copy"])
        say("startup: datacloud sync --help, and a sync of two empty buckets ...")
        # The floor on this machine at this moment: the interpreter and the standard modules any CLI loads.
        floor = timed([sys.executable, "-c", "import argparse, dataclasses, json, logging"])
        help_figures = timed([command, "sync", "--help"])
        sync_argv = pair.ours("empty", "empty-copy", args.concurrency)
        empty_figures = timed([command, "sync", *sync_argv[3:]])
    say(f"  floor {floor}\n  --help {help_figures}\n  empty sync {empty_figures}")
    return {
        "python_floor": floor,
        "help": help_figures,
        "empty_sync": empty_figures,
        "target": "<= 0.5 s",
    }


def clients_phase(args: argparse.Namespace) -> dict[str, Any]:
    """GET -> PUT of the same small objects by boto3 and by the lean path, in this process: the A/B."""
    from datacloud.replication.copier import Copier, CopySettings, Side
    from datacloud.replication.errors import RetryPolicy

    rng = random.Random(8)
    items = [(f"ab/{i:06d}.bin", rng.randint(4 * 1024, 64 * 1024)) for i in range(args.clients)]
    keys = [k for k, _ in items]
    out: dict[str, Any] = {"objects": len(items), "concurrency": args.concurrency}
    with pair_in_tmp() as pair:
        pair.buckets(["source"], ["boto3", "lean", "lean-copier"])
        say(f"clients: writing {len(items)} objects of 4-64 KiB ...")
        fill(pair.s3_src, "source", items, os.urandom(128 * 1024))

        def threaded(src: Any, dst: Any, bucket: str) -> None:
            def one(key: str) -> None:
                got = src.get_object(Bucket="source", Key=key)
                dst.put_object(Bucket=bucket, Key=key, Body=got["Body"].read(), Metadata=got["Metadata"])

            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one, keys))

        def copier_threads(bucket: str) -> None:
            source = Side(None, "source", "", "src", pair.s3_src)
            target = Side(None, bucket, "", "dst", pair.s3_dst)
            copier = Copier(source, target, settings=CopySettings(), retry=RetryPolicy())
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(lambda item: copier.copy(*item), items))

        boto_src = client(endpoint(pair.src), max_pool=args.concurrency + 4)
        boto_dst = client(endpoint(pair.dst), max_pool=args.concurrency + 4)
        jobs: list[tuple[str, Callable[[], None]]] = [
            ("boto3", lambda: threaded(boto_src, boto_dst, "boto3")),
            ("lean", lambda: threaded(pair.s3_src, pair.s3_dst, "lean")),
            ("lean-copier", lambda: copier_threads("lean-copier")),
        ]
        for who, job in jobs:
            say(f"clients: {who} ...")
            cpu0, wall0 = time.process_time(), time.monotonic()
            job()
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            out[who] = {
                "seconds": round(wall, 2),
                "objects_per_s": round(len(keys) / wall, 1),
                "client_cpu_ms_per_object": round(cpu * 1000 / len(keys), 3),
            }
            say(f"  {wall:.1f}s, {cpu * 1000 / len(keys):.3f} ms CPU per object")
        must_match(pair, "source", "boto3", "lean", "lean-copier")
    out["cpu_ratio_boto3_over_lean"] = round(
        out["boto3"]["client_cpu_ms_per_object"] / out["lean"]["client_cpu_ms_per_object"], 2
    )
    out["speed_ratio_lean_over_boto3"] = round(out["boto3"]["seconds"] / out["lean"]["seconds"], 2)
    return out


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "startup": startup_phase,
    "clients": clients_phase,
    "small": small_phase,
    "large": large_phase,
    "noop": noop_phase,
    "continuous": continuous_phase,
}


def compile_ours() -> None:
    """Byte-compile the `datacloud` package in place (its `__pycache__`), as an installation does, so a
    measured `datacloud sync` starts as an installed one: PYTHONDONTWRITEBYTECODE keeps the interpreter
    from writing the compiled modules itself, but it reads those compileall writes."""
    import compileall

    import datacloud

    if not compileall.compile_dir(Path(datacloud.__file__).parent, quiet=2):
        sys.exit("could not byte-compile the datacloud package")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the large race")
    parser.add_argument("--small-rounds", type=int, default=7, help="rounds of the small race")
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-size", default="64Mi")
    parser.add_argument("--noop", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=5000, help="objects for the clients A/B phase")
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/sync.json")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    compile_ours()
    unknown = set(phases) - set(PHASES) - set(EXTRA_PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")

    result: dict[str, Any] = {
        "benchmark": "sync",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "small_rounds": args.small_rounds,
            "datacloud_bytecode": "compiled before the runs, as installing the package does",
        },
    }
    for phase in phases:
        # The machine is shared: the load (`uptime`'s 1/5/15-minute averages) goes beside every figure.
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        load_before = [round(x, 2) for x in os.getloadavg()]
        measured = RUNNERS[phase](args)
        result[phase] = {
            "measured_at": started,
            "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
            **measured,
        }
    if "clients" in phases:  # the A/B has its own file, so a run of it alone keeps sync.json
        path = ROOT / "bench/results/s3-clients.json"
        # The record of the choice between the two lean layers (`layers`) stays as it was measured.
        kept = json.loads(path.read_text()) if path.exists() else {}
        ab = {k: v for k, v in result.items() if k not in PHASES}
        write(path, {**{k: v for k, v in kept.items() if k == "layers"}, **ab})
        result = {k: v for k, v in result.items() if k != "clients"}
    if any(p in PHASES for p in phases):
        # Phases not run this time keep their last figures (each says when it was measured).
        kept = json.loads(args.out.read_text()) if args.out.exists() else {}
        earlier = {k: v for k, v in kept.items() if k in PHASES and k not in result}
        note = {
            "phases_kept_from_earlier_runs": {
                k: v.get("measured_at", "before measured_at was recorded") for k, v in earlier.items()
            }
        }
        write(args.out, {**earlier, **result, **note})


def write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
