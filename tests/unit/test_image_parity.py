"""The Dockerfile and the engine-less image build (devstack/image.py) describe the same image."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from datacloud.devstack.image import OPERATOR, build_requirements, dependencies

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def one(word: str) -> str:
    found = [rest for w, rest in instructions() if w == word]
    assert len(found) == 1, f"expected one {word} in the Dockerfile, found {found}"
    return found[0]


def run_lines() -> str:
    return " && ".join(rest for w, rest in instructions() if w == "RUN")


def test_base_and_debian_packages_match() -> None:
    assert one("FROM") == f"debian:{OPERATOR.suite}-slim"
    install = re.search(r"apt-get install -y --no-install-recommends ([^&]+)", run_lines())
    assert install, "the Dockerfile installs its Debian packages with apt-get install"
    assert tuple(install.group(1).split()) == OPERATOR.apt_packages


def test_user_matches() -> None:
    uid = OPERATOR.uid
    assert one("USER") == f"{uid}:{uid}"
    assert f"groupadd --gid {uid} {OPERATOR.user}" in run_lines()
    assert f"useradd --uid {uid} --gid {uid} --no-create-home --shell /usr/sbin/nologin {OPERATOR.user}" in (
        run_lines()
    )


def test_virtualenv_and_python_packages_match() -> None:
    runs = run_lines()
    assert f"python3 -m venv {OPERATOR.venv}" in runs
    assert f"{OPERATOR.venv}/bin/pip install --no-cache-dir --upgrade pip" in runs
    # The Dockerfile installs the project with its dependencies; image.py installs exactly pyproject's
    # dependencies and build requirements first, then the project from the same sources.
    assert f"{OPERATOR.venv}/bin/pip install --no-cache-dir /tmp/src" in runs
    copied = [shlex.split(rest) for w, rest in instructions() if w == "COPY"]
    assert ["pyproject.toml", "README.md", "/tmp/src/"] in copied
    assert ["operator", "/tmp/src/operator"] in copied
    assert "setuptools>=69" in build_requirements()
    assert any(d.startswith("kopf") for d in dependencies())


def test_entrypoint_command_environment_and_ports_match() -> None:
    assert tuple(json.loads(one("ENTRYPOINT"))) == OPERATOR.entrypoint
    assert tuple(json.loads(one("CMD"))) == OPERATOR.cmd
    env = dict(pair.split("=", 1) for pair in shlex.split(one("ENV")))
    assert env == dict(OPERATOR.env)
    assert tuple(int(p) for p in one("EXPOSE").split()) == OPERATOR.ports


def test_entrypoint_is_the_projects_console_script() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert OPERATOR.entrypoint[0] in scripts
