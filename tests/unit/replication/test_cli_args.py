"""Bad input to `datacloud sync` ends in one clear line and exit code 2, before any network traffic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.api.reserved import RESERVED_BUCKETS
from datacloud.replication.cli import _token, add_sync_arguments, run_sync

SECRET = "the-secret-value-never-printed"


@pytest.fixture
def creds(tmp_path: Path) -> str:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"accessKeyId": "AK", "secretAccessKey": SECRET}))
    return str(path)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="datacloud sync")
    add_sync_arguments(parser)
    return parser.parse_args(list(argv))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = run_sync(parse(*argv))
    err = capsys.readouterr().err
    return code, err


URLS = ("http://127.0.0.1:1/src-bucket", "http://127.0.0.1:1/dst-bucket")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shard", "3/2"], "--shard"),
        (["--shard", "x"], "--shard"),
        (["--bandwidth", "abc"], "--bandwidth"),
        (["--bandwidth", "0"], "--bandwidth"),
        (["--bandwidth", "500"], "under 1Ki"),
        (["--concurrency", "lots"], "--concurrency"),
        (["--concurrency", "0"], "concurrency"),
        (["--sample", "150"], "percentage"),
        (["--part-size", "1Mi"], "part size"),
        (["--part-size", "6Gi"], "part size"),
        (["--multipart-threshold", "6Gi"], "multipart threshold"),
        (["--page-size", "5000"], "page size"),
        (["--mode", "continuous"], "--token-file"),
        (["--mode", "continuous", "--token-file", "/tmp/x", "--listen", "nope"], "--listen"),
    ],
)
def test_malformed_options(
    capsys: pytest.CaptureFixture[str], creds: str, extra: list[str], message: str
) -> None:
    code, err = run(capsys, *URLS, "--src-credentials", creds, "--dst-credentials", creds, *extra)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("datacloud sync: error:")
    assert message in err
    assert SECRET not in err


def test_missing_credentials_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, creds: str) -> None:
    code, err = run(
        capsys, *URLS, "--src-credentials", str(tmp_path / "nope.json"), "--dst-credentials", creds
    )
    assert code == 2
    assert "does not exist" in err
    assert err.count("\n") == 1


def test_malformed_credentials_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, creds: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"accessKeyId": "AK", "secretAccessKey": "' + SECRET)
    code, err = run(capsys, *URLS, "--src-credentials", creds, "--dst-credentials", str(bad))
    assert code == 2
    assert "not valid JSON" in err
    assert SECRET not in err


def test_credentials_are_required_for_urls(capsys: pytest.CaptureFixture[str], creds: str) -> None:
    code, err = run(capsys, *URLS, "--src-credentials", creds)
    assert code == 2
    assert "--dst-credentials" in err


def test_malformed_location(capsys: pytest.CaptureFixture[str], creds: str) -> None:
    code, err = run(
        capsys, "http://127.0.0.1:1/", URLS[1], "--src-credentials", creds, "--dst-credentials", creds
    )
    assert code == 2
    assert "names no bucket" in err


def test_names_need_a_resolver_and_resolver_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], creds: str
) -> None:
    code, err = run(capsys, "fuzhou", URLS[1], "--dst-credentials", creds)
    assert code == 2
    assert "'fuzhou'" in err

    def resolve(name: str) -> tuple[S3Endpoint, str, str]:
        raise LookupError(f"no DataCentre named {name}")

    assert run_sync(parse("fuzhou", URLS[1], "--dst-credentials", creds), resolve) == 2
    assert "no DataCentre named fuzhou" in capsys.readouterr().err


def test_resolver_supplies_endpoint_and_credentials(capsys: pytest.CaptureFixture[str], creds: str) -> None:
    asked: list[str] = []

    def resolve(name: str) -> tuple[S3Endpoint, str, str]:
        asked.append(name)
        return S3Endpoint("http://127.0.0.1:1", "us-east-1", S3Credentials("AK", SECRET)), "bucket", ""

    # The resolved endpoint is unreachable, so the run fails at runtime (1), after resolving.
    args = parse("xiamen", URLS[1], "--dst-credentials", creds, "--retries", "1")
    assert run_sync(args, resolve) == 1
    assert asked == ["xiamen"]
    captured = capsys.readouterr()
    assert captured.err.count("datacloud sync: failed:") == 1
    assert SECRET not in captured.err + captured.out


def test_token_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    token = _token(path)
    assert len(token) >= 32
    assert _token(path) == token
    assert path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("http://127.0.0.1:1/ovl/data", "http://127.0.0.1:1/ovl"),  # --delete mirror would delete the source
        ("http://127.0.0.1:1/b", "http://127.0.0.1:1/b/backup"),  # would grow backup/backup/...
        ("http://127.0.0.1:1/b/x", "http://127.0.0.1:1/b/x/"),  # the same folder
        ("http://LOCALHOST:80/b", "http://localhost/b/sub"),  # one store, spelled twice
    ],
)
def test_overlapping_source_and_target_are_refused(
    capsys: pytest.CaptureFixture[str], creds: str, source: str, target: str
) -> None:
    code, err = run(capsys, source, target, "--src-credentials", creds, "--dst-credentials", creds)
    assert code == 2
    assert err.count("\n") == 1
    assert "overlap" in err


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("http://127.0.0.1:1/b/a", "http://127.0.0.1:1/b/ab"),  # siblings: a/ never holds ab/
        ("http://127.0.0.1:1/b", "http://127.0.0.1:1/c"),
        ("http://127.0.0.1:1/b", "http://127.0.0.1:2/b"),  # two stores
    ],
)
def test_disjoint_locations_go_ahead(
    capsys: pytest.CaptureFixture[str], creds: str, source: str, target: str
) -> None:
    # Nothing listens on these ports: getting as far as the network (exit 1) means the check let it by.
    code, err = run(
        capsys, source, target, "--src-credentials", creds, "--dst-credentials", creds, "--retries", "1"
    )
    assert code == 1
    assert "overlap" not in err


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/b", "http://127.0.0.1:99999/b", "http://:9000/b"])
def test_a_bad_port_or_host_is_one_line(capsys: pytest.CaptureFixture[str], creds: str, url: str) -> None:
    code, err = run(capsys, url, URLS[1], "--src-credentials", creds, "--dst-credentials", creds)
    assert code == 2
    assert err.count("\n") == 1
    assert url in err


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:1/b", "connection refused"),
        ("http://no-such-centre.invalid:9000/b", "unknown host"),
    ],
)
def test_an_unreachable_store_is_one_line_naming_endpoint_and_operation(
    capsys: pytest.CaptureFixture[str], creds: str, url: str, reason: str
) -> None:
    code, err = run(
        capsys,
        url,
        "http://127.0.0.1:2/d",
        "--src-credentials",
        creds,
        "--dst-credentials",
        creds,
        "--retries",
        "1",
    )
    assert code == 1
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert url in err
    assert "ListObjectsV2" in err
    assert reason in err


def test_every_option_has_help_and_the_exit_codes_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="datacloud sync")
    add_sync_arguments(parser)
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no help text"
    parser.print_help()
    text = capsys.readouterr().out
    assert "exit codes:" in text
    for code in ("0", "1", "2"):
        assert f"\n  {code}  " in text


def test_a_sync_between_endpoints_loads_neither_kubernetes_nor_boto3() -> None:
    """Start-up cost: `datacloud sync --help` and a plain sync must not load the heavy clients."""
    import subprocess
    import sys

    probe = (
        "import sys, atexit\n"
        "heavy = ('kubernetes', 'boto3', 'kopf')\n"
        "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules)))\n"
        "from datacloud.cli import main\n"
        "try:\n    main(['sync', '--help'])\nexcept SystemExit:\n    pass\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("bucket", RESERVED_BUCKETS)
def test_a_bucket_the_operator_keeps_its_records_in_is_refused_as_destination(
    capsys: pytest.CaptureFixture[str], creds: str, bucket: str
) -> None:
    code, err = run(
        capsys,
        "http://127.0.0.1:1/b",
        f"http://127.0.0.1:2/{bucket}",
        "--src-credentials",
        creds,
        "--dst-credentials",
        creds,
    )
    assert code == 2
    assert f"DST bucket {bucket} must not be" in err


def test_sync_help_loads_no_s3_client_at_all() -> None:
    """`--help` needs the argument definitions only: not the engine, botocore or tenacity either."""
    import subprocess
    import sys

    probe = (
        "import sys, atexit\n"
        "heavy = ('datacloud.replication.engine', 'botocore', 'tenacity', 'datacloud.adapters.s3_wire')\n"
        "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules)))\n"
        "from datacloud.cli import main\n"
        "try:\n    main(['sync', '--help'])\nexcept SystemExit:\n    pass\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_sync_loads_no_pydantic() -> None:
    """The CRD models' library costs a quarter of a second to import on a busy machine, a few per cent
    of a 10,000-object sync; a sync only needs the reserved bucket names, not the models."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "import datacloud.cli, datacloud.replication.cli, datacloud.replication.engine\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("run_id", ["", "a/b", "中文", "has space", "x" * 300, "semi;colon"])
def test_a_report_run_that_cannot_be_a_configmap_key_is_refused_before_copying(
    capsys: pytest.CaptureFixture[str], creds: str, run_id: str
) -> None:
    """The run names its summary's key in the ConfigMap; the API server would refuse a bad key only
    after the whole copy, and an empty run would give a key no reader parses."""
    from datacloud.commands import sync

    parser = argparse.ArgumentParser(prog="datacloud sync")
    sync.add_arguments(parser)
    args = parser.parse_args(
        [
            *URLS,
            "--src-credentials",
            creds,
            "--dst-credentials",
            creds,
            "--report-configmap",
            "ns/cm",
            "--report-run",
            run_id,
        ]
    )
    assert sync.main(args) == 2
    err = capsys.readouterr().err
    assert "--report-run" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("run_id", ["20261130T0100", "manual-1.2_x"])
def test_a_report_run_made_of_key_characters_names_the_summary(run_id: str) -> None:
    from datacloud.commands import sync

    written: list[dict[str, object]] = []

    class Kube:
        def apply(self, body: dict[str, object], field_manager: str) -> None:
            written.append(body)

    class Centres:
        kube = Kube()

    report = sync.reporter("ns/cm", Centres(), "1/3", run_id)  # type: ignore[arg-type]
    report({"copied": 1})
    assert list(written[0]["data"]) == [f"summary-{run_id}-1-3"]  # type: ignore[call-overload]


def test_a_password_in_a_location_is_never_printed(capsys: pytest.CaptureFixture[str], creds: str) -> None:
    code, err = run(
        capsys,
        "http://AK:pa55w0rd@127.0.0.1:1/src",
        URLS[1],
        "--src-credentials",
        creds,
        "--dst-credentials",
        creds,
    )
    out = capsys.readouterr().out
    assert code == 2
    assert err.startswith("datacloud sync: error:")
    assert err.count("\n") == 1
    assert "pa55w0rd" not in err + out
