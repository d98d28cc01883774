"""Building the docker sandbox's grading image (`autograder build-image`), from a checkout.

The build context is a folder assembled here, never the checkout, so every builder (the legacy one,
which a docker client without buildx uses, or BuildKit) sends only what the image needs:

  Dockerfile                                   docker/Dockerfile
  autograder/__init__.py, autograder/protocol/  the worker's modules (docker.WORKER_MODULES)
  host/ca-certificates.crt                     the CA bundle the host's pip trusts
  host/pip.conf                                the host pip's http(s) indexes (a mirror, a proxy), if any
  host/wheels/torch-<version>-*.whl            the host's own torch build, where pip's find-links hold it

The base: the BASE build argument where one is given; else python:3.11-slim where it is present or
can be pulled; else autograder-base:bookworm, made by docker/debian-base.sh (debootstrap) where no
registry answers.

The image carries two labels: docker.LABEL, the hash of the worker's modules that the sandbox
requires, and BUILD_LABEL, a hash of everything the build used (the context's files, the build
arguments, the base's image id). An image whose BUILD_LABEL matches is kept: building again costs
nothing until something it was built from changes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.sandboxes.docker import LABEL, PACKAGE_PARENT, dockerfile, worker_module_files, worker_modules_digest

BUILD_LABEL = "autograder.build"
DEFAULT_BASE = "python:3.11-slim"
DEBIAN_BASE = "autograder-base:bookworm"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIP_INDEXES = ("index-url", "extra-index-url", "trusted-host")  # of the host pip's settings, carried in


class BuildError(RuntimeError):
    """The image cannot be built; the message says why and what to do."""


def pip_settings() -> dict[str, str]:
    """The host pip's configuration (`pip config list`) with its environment variables over it:
    {"find-links": ..., "cert": ...}, the last value of each key winning as pip reads them."""
    settings = {}
    try:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
        lines = listed.stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        lines = []
    for line in lines:
        key, _, value = line.partition("=")
        try:  # pip prints each value as a Python literal ('https://a\nhttps://b' for several lines)
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            value = value.strip()
        settings[key.rsplit(".", 1)[-1]] = str(value)
    for key in ("find-links", "cert", *PIP_INDEXES):
        from_environment = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if from_environment:
            settings[key] = from_environment
    return settings


def host_pip_conf(settings: dict[str, str]) -> str:
    """The host pip's indexes that a build can reach too (http and https: a mirror, a proxy; not file://
    folders of this host), as a pip.conf; "" where there are none."""
    lines = []
    for key in PIP_INDEXES:
        words = settings.get(key, "").split()
        if key != "trusted-host":
            words = [url for url in words if url.startswith(("http://", "https://"))]
        if words:
            lines.append(f"{key} = {' '.join(words)}")
    return "[global]\n" + "\n".join(lines) + "\n" if lines else ""


def host_ca_bundle(settings: dict[str, str]) -> Path | None:
    """The CA bundle the host's pip trusts: pip's cert, else the system's."""
    for candidate in (settings.get("cert"), os.environ.get("SSL_CERT_FILE"), SYSTEM_CA_BUNDLE):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def host_torch_wheel(settings: dict[str, str]) -> Path | None:
    """The wheel of the torch installed here (e.g. 2.13.0+cpu), from a local folder of pip's find-links."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
    for link in settings.get("find-links", "").split():
        folder = Path(link.removeprefix("file://"))
        if folder.is_dir():
            wheels = sorted(folder.glob(f"torch-{version}-*.whl"))
            if wheels:
                return wheels[0]
    return None


def assemble(context: Path, root: Path = PACKAGE_PARENT, ca_bundle: Path | None = None, torch_wheel: Path | None = None,
             pip_conf: str = "") -> None:
    """Fill the empty folder context with what docker/Dockerfile copies, and nothing else."""
    shutil.copyfile(dockerfile(root), context / "Dockerfile")
    for relative in worker_module_files(root):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, context / relative)
    host = context / "host"
    host.mkdir()
    if ca_bundle:
        shutil.copyfile(ca_bundle, host / "ca-certificates.crt")
    if pip_conf:
        (host / "pip.conf").write_text(pip_conf)
    if torch_wheel:
        (host / "wheels").mkdir()
        _link_or_copy(torch_wheel, host / "wheels" / torch_wheel.name)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # 190 MB: no copy where both lie on one file system
    except OSError:
        shutil.copyfile(source, target)


def context_files(context: Path) -> list[str]:
    return sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())


def build_digest(context: Path, build_args: list[str], base_id: str) -> str:
    """BUILD_LABEL's value: a SHA-256 of the context's files (paths and contents), the build arguments
    and the id of the base image."""
    digest = hashlib.sha256(json.dumps([build_args, base_id]).encode())
    for relative in context_files(context):
        digest.update(f"\0{relative}\0".encode())
        with open(context / relative, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def build_command(image: str, context: Path, build_args: list[str], labels: dict[str, str]) -> list[str]:
    command = ["docker", "build", "-t", image]
    for name, value in labels.items():
        command += ["--label", f"{name}={value}"]
    for build_arg in build_args:
        command += ["--build-arg", build_arg]
    return command + [str(context)]


def docker(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BuildError("the docker command is not installed") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"`docker {shlex.join(arguments)}` did not answer within {timeout:g} s") from None


def image_labels(image: str) -> dict[str, str] | None:
    """image's labels, or None when there is no such image."""
    found = docker("image", "inspect", "--format", "{{json .Config.Labels}}", image)
    return (json.loads(found.stdout) or {}) if found.returncode == 0 else None


def image_id(image: str) -> str | None:
    found = docker("image", "inspect", "--format", "{{.Id}}", image)
    return found.stdout.strip() if found.returncode == 0 else None


def choose_base(build_args: list[str], root: Path, say) -> list[str]:
    """build_args with BASE set: the one given; python:3.11-slim where present or pullable; else the
    Debian base that docker/debian-base.sh builds without a registry."""
    if any(arg.startswith("BASE=") for arg in build_args):
        return build_args
    if image_id(DEFAULT_BASE) is None:
        try:
            pulled = docker("pull", DEFAULT_BASE, timeout=900)
            said = (pulled.stderr or pulled.stdout).strip().splitlines()
            why = None if pulled.returncode == 0 else (said[-1] if said else "no reason given")
        except BuildError as exc:  # a registry that does not answer in time
            why = str(exc)
        if why is not None:
            say(f"{DEFAULT_BASE} cannot be pulled ({why}); using {DEBIAN_BASE}, built with debootstrap")
            try:
                made = subprocess.run(["bash", str(root / "docker" / "debian-base.sh"), DEBIAN_BASE]).returncode
            except OSError:
                made = 1
            if made != 0:
                raise BuildError(f"no base image: {DEFAULT_BASE} cannot be pulled and docker/debian-base.sh failed "
                                 f"(it needs root and debootstrap); or give one with --build-arg BASE=<image>")
            return [*build_args, f"BASE={DEBIAN_BASE}"]
    return [*build_args, f"BASE={DEFAULT_BASE}"]


def build(image: str, build_args: list[str] = (), force: bool = False, root: Path = PACKAGE_PARENT, say=print) -> str:
    """Build image from root's docker/Dockerfile unless an image of that name is already current;
    returns what was done ("built" or "current"). Raises BuildError."""
    if not dockerfile(root).is_file():
        raise BuildError(f"{dockerfile(root)} is missing: build the image in a checkout of autograder")
    build_args = choose_base(list(build_args), root, say)
    base = dict(arg.split("=", 1) for arg in build_args if "=" in arg)["BASE"]
    settings = pip_settings()
    # A wheel for another torch index (a CUDA build) would stand in for the one TORCH_INDEX names.
    wheel = None if any(arg.startswith("TORCH_INDEX=") for arg in build_args) else host_torch_wheel(settings)
    with tempfile.TemporaryDirectory(prefix="autograder-image-") as folder:
        context = Path(folder)
        assemble(context, root, host_ca_bundle(settings), wheel, host_pip_conf(settings))
        labels = {LABEL: worker_modules_digest(root), BUILD_LABEL: build_digest(context, build_args, image_id(base) or base)}
        if not force and (image_labels(image) or {}).get(BUILD_LABEL) == labels[BUILD_LABEL]:
            say(f"{image} is current (built from this checkout, base {base}): kept")
            return "current"
        command = build_command(image, context, build_args, labels)
        say(f"running: {shlex.join(command)}")
        say(f"context: {', '.join(context_files(context))}")
        if subprocess.run(command).returncode != 0:
            raise BuildError(f"docker build of {image} failed (its output is above)")
    return "built"
