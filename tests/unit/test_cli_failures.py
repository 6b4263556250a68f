"""The cluster-facing commands, when the cluster cannot be used: one line naming what failed and an exit
code, never a traceback or a credential. Real kubeconfigs, a real closed port, a real HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacloud.cli import main
from datacloud.devstack.process import free_port

TOKEN = "sekrit-token-never-printed"


def kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


@pytest.fixture
def forbidding() -> Iterator[str]:
    """An API server that answers every request 403 with a Status, as RBAC does."""

    class Forbid(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Forbidden",
                    "code": 403,
                    "message": 'drreplicas.datacloud.fujian.gov.cn "r" is forbidden: User "u" cannot get',
                }
            ).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PATCH = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbid)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert TOKEN not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["dr", "status", "r"],
        ["dr", "failover", "r", "--to", "fz-samecity-dr"],
        ["dr", "sync-now", "r"],
        ["census", "run", "c"],
    ],
)
def test_an_unreachable_api_server_is_named_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    port = free_port()
    code = main([*argv, "--kubeconfig", kubeconfig(tmp_path, f"http://127.0.0.1:{port}")])
    line = one_line(capsys)
    assert code == 1
    command = " ".join(argv[:1] if argv == ["status"] else argv[:2])
    assert line == f"datacloud {command}: cannot reach the API server at 127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize("argv", [["status"], ["dr", "status", "r"]])
def test_an_unusable_kubeconfig_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    assert main([*argv, "--kubeconfig", str(tmp_path / "missing")]) == 2
    assert "cannot use the kubeconfig" in one_line(capsys)
    assert main([*argv, "--kubeconfig", kubeconfig(tmp_path, "http://127.0.0.1:1"), "--context", "nope"]) == 2
    assert "nope" in one_line(capsys)


def test_a_refusal_says_the_status_and_the_api_servers_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, forbidding: str
) -> None:
    assert main(["dr", "status", "r", "-n", "dr", "--kubeconfig", kubeconfig(tmp_path, forbidding)]) == 1
    line = one_line(capsys)
    assert line.startswith("datacloud dr status: the API server answered 403 Forbidden: ")
    assert "cannot get" in line


@pytest.mark.parametrize("where", ["missing-dir/report.html", "."])
def test_census_report_to_a_path_it_cannot_write_says_so_before_collecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A report to a directory that does not exist (or to a directory) was collected from every city
    first and then ended in a FileNotFoundError traceback; now one line, before the cluster is asked
    (the kubeconfig names a closed port, so asking it would say 'cannot reach')."""
    config = kubeconfig(tmp_path, f"https://127.0.0.1:{free_port()}")
    out = str(tmp_path / where)
    code = main(["census", "report", "--kubeconfig", config, "-o", out])
    err = capsys.readouterr().err.replace("\n", "")  # rich wraps stderr at 80 columns
    assert code == 2
    assert out in err
    assert "cannot reach" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "1e999", "ten", ""])
@pytest.mark.parametrize(
    "argv",
    [["dr", "failover", "r", "--to", "fz-samecity-dr"], ["dr", "sync-now", "r"], ["census", "run", "c"]],
)
def test_a_timeout_that_could_never_wait_or_never_end_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], value: str
) -> None:
    """Before, `--timeout nan` gave up at once and `--timeout inf` waited for ever: now argparse refuses
    anything but a finite number of seconds above 0, naming the option (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main([*argv, f"--timeout={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"argument --timeout: must be a number of seconds above 0, not {value!r}" in err
