"""OCI images built on this machine, without a container engine or a registry: the node's pause image and
the operator image.

Both are OCI image layouts assembled with `umoci` and handed to containerd as an OCI archive. The operator
image follows the Dockerfile step for step (Debian base with python3-venv, a virtualenv at /opt/datacloud
with the project installed, user 10001, the same entrypoint and command); `tests/unit/test_image_parity.py`
keeps the two in step. Its base (Debian packages from mmdebstrap plus the project's Python dependencies)
is cached outside the clone under a key made of the Debian suite, the packages and the install hooks,
and rebuilt when missing; the project itself is installed on top at every build, as a layer of its own.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from .process import StackError

PROJECT_ROOT = Path(__file__).resolve().parents[3]

PAUSE_IMAGE = "localhost/datacloud/pause:1"
BUILD_CA = "/tmp/build-ca.crt"
# The pause container only holds the pod's namespaces open until it is told to stop.
PAUSE_ENTRYPOINT = [
    "/bin/busybox",
    "sh",
    "-c",
    'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done',
]


@dataclass(frozen=True)
class ImageSpec:
    """What the Dockerfile's final stage says, in the terms `umoci config` takes."""

    suite: str = "bookworm"
    apt_packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    venv: str = "/opt/datacloud"
    uid: int = 10001
    user: str = "datacloud"
    entrypoint: tuple[str, ...] = ("datacloud",)
    cmd: tuple[str, ...] = ("run", "--metrics-address=0.0.0.0", "--liveness=http://0.0.0.0:8080/healthz")
    env: tuple[tuple[str, str], ...] = (
        ("PATH", "/opt/datacloud/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("PYTHONUNBUFFERED", "1"),
        ("MALLOC_ARENA_MAX", "2"),  # docs/runtime.md: the operator's threads kept RSS in many malloc arenas
    )
    ports: tuple[int, ...] = (8000, 8080, 8090)


OPERATOR = ImageSpec()


def run(*argv: str, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        raise StackError(f"{argv[0]} {' '.join(argv[1:3])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _archive(layout: Path, dest: Path) -> Path:
    """An OCI archive (a tar of the layout), the form `ctr images import` takes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    run("tar", "-C", str(layout), "-cf", str(dest), ".")
    return dest


def _layer_from_dir(layout: Path, tag: str, root: Path, workdir: Path) -> None:
    layer = workdir / f"layer-{tag}.tar"
    run("tar", "--numeric-owner", "-C", str(root), "-cf", str(layer), ".")
    run("umoci", "raw", "add-layer", "--image", f"{layout}:{tag}", str(layer))
    layer.unlink()


def pause_image(dest: Path) -> Path:
    """The sandbox image containerd starts first in every pod: busybox-static and a wait for SIGTERM."""
    with tempfile.TemporaryDirectory(prefix="pause-") as tmp:
        work = Path(tmp)
        layout, root = work / "layout", work / "root"
        tag = PAUSE_IMAGE.rsplit(":", 1)[1]
        run("umoci", "init", "--layout", str(layout))
        run("umoci", "new", "--image", f"{layout}:{tag}")
        (root / "bin").mkdir(parents=True)
        busybox = shutil.which("busybox")
        if not busybox:
            raise StackError("busybox not found: install busybox-static (tools/build.sh does)")
        shutil.copy(busybox, root / "bin" / "busybox")
        _layer_from_dir(layout, tag, root, work)
        run("umoci", "config", "--image", f"{layout}:{tag}",
            *[a for e in PAUSE_ENTRYPOINT for a in ("--config.entrypoint", e)])  # fmt: skip
        return _archive(layout, dest)


def base_hooks(spec: ImageSpec = OPERATOR) -> list[str]:
    """mmdebstrap's customize hooks: the user, and a virtualenv with the project's dependencies and build
    backend, so that installing the project on top needs no network."""
    deps = [*dependencies(), *build_requirements()]
    trust = f"SSL_CERT_FILE={BUILD_CA} PIP_CERT={BUILD_CA} REQUESTS_CA_BUNDLE={BUILD_CA}"
    return [
        f'chroot "$1" groupadd --gid {spec.uid} {spec.user}',
        f'chroot "$1" useradd --uid {spec.uid} --gid {spec.uid} --no-create-home '
        f"--shell /usr/sbin/nologin {spec.user}",
        f'chroot "$1" python3 -m venv {spec.venv}',
        f'chroot "$1" env {trust} {spec.venv}/bin/pip install --no-cache-dir --upgrade pip',
        f'chroot "$1" env {trust} {spec.venv}/bin/pip install --no-cache-dir '
        + " ".join(shlex.quote(d) for d in deps),
        'rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*',
    ]


def base_key(spec: ImageSpec = OPERATOR) -> str:
    """The base changes with the Debian suite and packages and with the hooks (so the dependencies)."""
    return hashlib.sha256(repr((spec.suite, spec.apt_packages, base_hooks(spec))).encode()).hexdigest()[:12]


def _base_rootfs(spec: ImageSpec, dest: Path) -> Path:
    """Debian from its packages, the user, and a virtualenv holding the project's dependencies (cached)."""
    tarball = dest / f"operator-base-{spec.suite}-{base_key(spec)}.tar"
    if tarball.exists():
        return tarball
    dest.mkdir(parents=True, exist_ok=True)
    tmp = tarball.with_suffix(f".tmp{os.getpid()}.tar")  # mmdebstrap picks the output format by suffix
    # pip inside the chroot trusts what the build machine trusts (its proxy's CA, say); that bundle is
    # used for the download only and is not left in the image.
    host_ca = (
        os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    )
    hooks = [f'cp {shlex.quote(host_ca)} "$1{BUILD_CA}"', *base_hooks(spec), f'rm -f "$1{BUILD_CA}"']
    # In a mount namespace of its own: an interrupted build leaves none of its chroot's mounts behind.
    isolated = ["unshare", "--mount", "--propagation", "private"]
    packages = "--include=" + ",".join(spec.apt_packages)
    customize = [f"--customize-hook={h}" for h in hooks]
    try:
        run(*isolated, "mmdebstrap", "--variant=minbase", packages, *customize, spec.suite, str(tmp))
        tmp.rename(tarball)
    finally:
        tmp.unlink(missing_ok=True)
    return tarball


def dependencies() -> list[str]:
    """The project's runtime requirements, as pyproject.toml states them."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def build_requirements() -> list[str]:
    """What building the project's wheel needs (setuptools): in the base, so the last step is offline."""
    return list(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["build-system"]["requires"])


def _base_layout(spec: ImageSpec) -> Path:
    """The base as a one-layer OCI layout tagged `base` (cached beside the tarball): compressing the
    half-gigabyte layer once, not at every image build."""
    base = _base_rootfs(spec, settings.current().tools_cache / "images")
    layout = base.with_suffix(".oci")
    if layout.is_dir():
        return layout
    tmp = Path(f"{layout}.tmp{os.getpid()}")
    try:
        run("umoci", "init", "--layout", str(tmp))
        run("umoci", "new", "--image", f"{tmp}:base")
        run("umoci", "raw", "add-layer", "--image", f"{tmp}:base", str(base))
        tmp.rename(layout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return layout


def _base_tree(spec: ImageSpec) -> Path:
    """The base unpacked once (cached beside the layout): the lower layer the project is installed over."""
    layout = _base_layout(spec)
    tree = layout.with_suffix(".rootfs")
    if tree.is_dir():
        return tree
    tmp = Path(f"{tree}.tmp{os.getpid()}")
    try:
        run("umoci", "raw", "unpack", "--image", f"{layout}:base", str(tmp))
        tmp.rename(tree)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


def operator_image(dest: Path, reference: str, spec: ImageSpec = OPERATOR) -> Path:
    """The operator image as an OCI archive at `dest`, tagged `reference` (name:tag): the cached base
    layer, and a layer holding what `pip install` of the project adds to it (an overlay's upper dir)."""
    layout_base, tree = _base_layout(spec), _base_tree(spec)
    tag = reference.rsplit(":", 1)[1]
    with tempfile.TemporaryDirectory(prefix="operator-image-") as tmp:
        work = Path(tmp)
        layout, upper, scratch, merged, src = (work / n for n in ("layout", "upper", "work", "merged", "src"))
        for d in (upper, scratch, merged):
            d.mkdir()
        shutil.copytree(
            PROJECT_ROOT / "operator", src / "operator", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(PROJECT_ROOT / name, src / name)
        # In a mount namespace of its own, so the overlay and the bind mount vanish with the command.
        pip = f"{spec.venv}/bin/pip install --no-cache-dir --no-deps --no-build-isolation /tmp"
        script = (
            f"mount -t overlay overlay -o lowerdir={tree},upperdir={upper},workdir={scratch} {merged}"
            f" && mount --bind {src} {merged}/tmp && chroot {merged} {pip}"
        )
        run("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
        for leftover in ("tmp", "root/.cache"):
            shutil.rmtree(upper / leftover, ignore_errors=True)
        whiteouts = [p for p in upper.rglob("*") if p.is_char_device()]
        if whiteouts:
            raise StackError(f"installing the project removed files from the base: {whiteouts[:3]}")
        shutil.copytree(layout_base, layout)
        run("umoci", "config", "--image", f"{layout}:base", "--tag", tag, "--config.workingdir", "/")
        _layer_from_dir(layout, tag, upper, work)
        run("umoci", "rm", "--image", f"{layout}:base")
        config = ["--config.user", f"{spec.uid}:{spec.uid}"]
        config += [a for e in spec.entrypoint for a in ("--config.entrypoint", e)]
        config += [a for c in spec.cmd for a in ("--config.cmd", c)]
        config += [a for k, v in spec.env for a in ("--config.env", f"{k}={v}")]
        config += [a for p in spec.ports for a in ("--config.exposedports", f"{p}/tcp")]
        run("umoci", "config", "--image", f"{layout}:{tag}", *config)
        run("umoci", "gc", "--layout", str(layout))
        return _archive(layout, dest)


def main(argv: list[str]) -> int:
    """`python -m datacloud.devstack.image base`: build (or find) the cached operator base; tools/build.sh
    runs it so a cold test run does not spend its minutes on Debian and PyPI downloads."""
    if argv != ["base"]:
        print("usage: python -m datacloud.devstack.image base", file=sys.stderr)
        return 2
    print(_base_tree(OPERATOR).parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
