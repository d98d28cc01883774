"""The grading image must hold this checkout's worker: the labels that `autograder build-image` gives
it (a hash of the worker's modules; a hash of all the build used, which keeps a current image), the
base it picks where no registry answers, what its context carries from the host, and the docker
sandbox's refusal of an image whose label is missing or differs, with the command that rebuilds it.

These run without an engine (`make test`; tests/test_docker.py builds a real image where one runs):
they talk to a fake `docker` executable put first on PATH (the `fake_docker` fixture). Our side
reaches Docker only through that command, a subprocess; the fake answers `info`, `image inspect`
and `pull` from a state folder a test sets, lists the context each `build` was given, and records
every command line. Everything on our side of that boundary runs for real."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import importlib.metadata

from autograder.sandboxes import SandboxUnavailable, choose
from autograder.sandboxes import image as image_build
from autograder.sandboxes.docker import (
    LABEL,
    DockerSandbox,
    mismatch,
    worker_module_files,
    worker_modules_digest,
)
from autograder.sandboxes.image import BUILD_LABEL, DEBIAN_BASE, DEFAULT_BASE

ROOT = Path(__file__).resolve().parent.parent
CURRENT = worker_modules_digest(ROOT)
OTHER = "0" * 64

FAKE_DOCKER = '''#!{python}
import json, os, sys
from pathlib import Path

state = Path({state!r})
with open(state / "calls", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
images = json.loads((state / "images.json").read_text())
if sys.argv[1] == "info":
    print("28.2.2")
elif sys.argv[1:3] == ["image", "inspect"]:
    name = sys.argv[-1]
    if name not in images:
        print("[]")
        sys.exit("Error response from daemon: No such image: " + name)
    if "--format" not in sys.argv:
        print(images[name])
    else:
        found = json.loads(images[name])[0]
        print(json.dumps(found["Config"]["Labels"]) if "Labels" in sys.argv[sys.argv.index("--format") + 1] else found["Id"])
elif sys.argv[1] == "pull":
    if sys.argv[2] not in (state / "pullable").read_text().split():
        sys.exit('Error response from daemon: Get "https://registry-1.docker.io/v2/": no such host')
elif sys.argv[1] == "build":
    context = Path(sys.argv[-1])
    files = sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())
    with open(state / "builds", "a") as builds:
        builds.write(json.dumps(files) + "\\n")
'''


def inspected(name: str, labels: dict | None) -> str:
    """What `docker image inspect name` prints (the fields we read, and a few beside them)."""
    config = {"Cmd": ["python", "-P", "-m", "autograder.protocol.worker", "/submission"], "Labels": labels}
    return json.dumps([{"Id": "sha256:" + "ab" * 32, "RepoTags": [name], "Config": config}], indent=4)


class FakeDocker:
    def __init__(self, state: Path):
        self.state = state
        self.images({})
        self.pullable()

    def pullable(self, *names: str) -> None:
        """Which images a `docker pull` gets (none: no registry answers)."""
        (self.state / "pullable").write_text(" ".join(names))

    def contexts(self) -> list[list[str]]:
        """The files of each build's context, in order."""
        log = self.state / "builds"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def images(self, labels_by_name: dict[str, dict | None]) -> None:
        """Which images exist, and their labels."""
        written = {name: inspected(name, labels) for name, labels in labels_by_name.items()}
        (self.state / "images.json").write_text(json.dumps(written))

    def answer_inspect_with(self, name: str, text: str) -> None:
        (self.state / "images.json").write_text(json.dumps({name: text}))

    def calls(self) -> list[list[str]]:
        log = self.state / "calls"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> FakeDocker:
    """A `docker` first on PATH that answers from a state folder; the default image's name left unset."""
    bin_dir, state = tmp_path / "bin", tmp_path / "docker-state"
    bin_dir.mkdir()
    state.mkdir()
    executable = bin_dir / "docker"
    executable.write_text(FAKE_DOCKER.format(python=sys.executable, state=str(state)))
    executable.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("AUTOGRADER_IMAGE", raising=False)
    return FakeDocker(state)


def copy_of_worker(destination: Path) -> Path:
    """The worker's modules of this checkout, alone under destination (as a fresh clone would have them)."""
    for relative in worker_module_files(ROOT):
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, destination / relative)
    return destination


def quoted_command(reason: str) -> list[str]:
    """The command a message gives between backticks, as the shell would split it."""
    return shlex.split(reason.rsplit("`", 2)[-2])


# --- the hash ------------------------------------------------------------------------------------------


def test_worker_modules_are_the_package_marker_and_the_protocol():
    files = worker_module_files(ROOT)
    assert files[0] == "autograder/__init__.py"
    assert {"autograder/protocol/worker.py", "autograder/protocol/wire.py"} <= set(files)
    assert all(f.startswith("autograder/protocol/") and f.endswith(".py") for f in files[1:])


def test_digest_depends_on_contents_and_paths_only(tmp_path):
    """A fresh copy gets the same digest: not times, modes, bytecode or the rest of the package."""
    copy = copy_of_worker(tmp_path / "clone")
    for relative in worker_module_files(copy):
        os.utime(copy / relative, (1, 1))
        (copy / relative).chmod(0o600)
    (copy / "autograder" / "protocol" / "__pycache__").mkdir()
    (copy / "autograder" / "protocol" / "__pycache__" / "wire.cpython-311.pyc").write_bytes(b"\0bytecode")
    (copy / "autograder" / "cli.py").write_text("# the grader, not the worker\n")
    (copy / "docker").mkdir()
    (copy / "docker" / "Dockerfile").write_text("FROM scratch\n")
    assert worker_modules_digest(copy) == CURRENT
    assert worker_modules_digest(copy) == worker_modules_digest(copy)
    assert len(CURRENT) == 64 and int(CURRENT, 16) >= 0


@pytest.mark.parametrize("relative", worker_module_files(ROOT))
def test_digest_changes_when_a_worker_module_changes(tmp_path, relative):
    copy = copy_of_worker(tmp_path)
    (copy / relative).write_bytes((copy / relative).read_bytes() + b"\n")
    assert worker_modules_digest(copy) != CURRENT


def test_digest_changes_when_a_worker_module_is_added_or_renamed(tmp_path):
    added = copy_of_worker(tmp_path / "added")
    (added / "autograder" / "protocol" / "extra.py").write_text("")
    renamed = copy_of_worker(tmp_path / "renamed")
    (renamed / "autograder" / "protocol" / "wire.py").rename(renamed / "autograder" / "protocol" / "wire2.py")
    assert len({CURRENT, worker_modules_digest(added), worker_modules_digest(renamed)}) == 3


# --- the build ------------------------------------------------------------------------------------------


def rebuild(image: str) -> list[str]:
    return ["autograder", "build-image", "--image", image]


def built(fake_docker) -> list[list[str]]:
    return [call for call in fake_docker.calls() if call[0] == "build"]


def options_of(build: list[str]) -> dict[str, list[str]]:
    """A `docker build` call's options, each flag's values in order; the context is the last word."""
    options = {}
    for flag, value in zip(build[1:-1:2], build[2:-1:2]):
        options.setdefault(flag, []).append(value)
    return options


def labels_of(build: list[str]) -> dict[str, str]:
    return dict(label.split("=", 1) for label in options_of(build)["--label"])


def build_quietly(image: str, *build_args: str, force: bool = False) -> tuple[str, list[str]]:
    said = []
    return image_build.build(image, build_args, force=force, root=ROOT, say=said.append), said


def test_build_image_labels_the_image_and_the_sandbox_accepts_it(fake_docker):
    fake_docker.pullable(DEFAULT_BASE)
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "build-image", "--image", "course/grader:7", "--build-arg", "TORCH_INDEX=https://x"],
        cwd="/", capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    (build,) = built(fake_docker)
    options = options_of(build)
    assert options["-t"] == ["course/grader:7"]
    assert options["--build-arg"] == ["TORCH_INDEX=https://x", f"BASE={DEFAULT_BASE}"]
    assert labels_of(build)[LABEL] == CURRENT and len(labels_of(build)[BUILD_LABEL]) == 64
    assert shlex.join(build) in run.stderr  # the command, as run
    # The context: never the checkout, and no host wheel where TORCH_INDEX names the torch to take.
    assert Path(build[-1]) != ROOT and not any("wheels" in f for f in fake_docker.contexts()[0])
    assert {"Dockerfile", *worker_module_files(ROOT)} <= set(fake_docker.contexts()[0])
    # The image that command builds is the one the sandbox accepts.
    assert mismatch("course/grader:7", inspected("course/grader:7", labels_of(build)), ROOT) is None


def test_a_current_image_is_kept_and_anything_it_was_built_from_rebuilds_it(fake_docker):
    fake_docker.images({DEFAULT_BASE: {}})
    assert build_quietly("course/grader:7", "TORCH_INDEX=https://x")[0] == "built"
    labels = labels_of(built(fake_docker)[-1])
    fake_docker.images({"course/grader:7": labels, DEFAULT_BASE: {}})
    done, said = build_quietly("course/grader:7", "TORCH_INDEX=https://x")
    assert done == "current" and len(built(fake_docker)) == 1 and "is current" in said[-1]
    assert build_quietly("course/grader:7", "TORCH_INDEX=https://x", force=True)[0] == "built"
    assert build_quietly("course/grader:7", "TORCH_INDEX=https://y")[0] == "built"
    assert labels_of(built(fake_docker)[-1])[BUILD_LABEL] != labels[BUILD_LABEL]
    assert labels_of(built(fake_docker)[-1])[LABEL] == labels[LABEL]  # same worker, other torch


def test_without_a_registry_the_debian_base_is_used(fake_docker):
    """python:3.11-slim cannot be pulled: docker/debian-base.sh's image (here already there, so the
    script keeps it) is the base."""
    fake_docker.images({DEBIAN_BASE: {}})
    done, said = build_quietly("course/grader:7", "TORCH_INDEX=https://x")
    assert done == "built"
    assert options_of(built(fake_docker)[0])["--build-arg"][-1] == f"BASE={DEBIAN_BASE}"
    assert said[0].startswith(f"{DEFAULT_BASE} cannot be pulled (") and "no such host" in said[0] and DEBIAN_BASE in said[0]


def test_a_given_base_is_neither_pulled_nor_replaced(fake_docker):
    build_quietly("course/grader:cuda", "BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "TORCH_INDEX=https://x/cu128")
    assert not any(call[0] == "pull" for call in fake_docker.calls())
    assert options_of(built(fake_docker)[0])["--build-arg"] == [
        "BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "TORCH_INDEX=https://x/cu128"]


def test_the_hosts_ca_bundle_and_torch_wheel_are_carried(fake_docker, tmp_path, monkeypatch):
    """Where pip's find-links hold the wheel of the torch installed here, the image gets that build."""
    wheels, bundle = tmp_path / "wheels", tmp_path / "proxy-ca.pem"
    wheels.mkdir()
    wheel = wheels / f"torch-{importlib.metadata.version('torch')}-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"PK")
    (wheels / "torch-1.0.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"PK")  # not the host's
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("PIP_FIND_LINKS", f"file://{wheels}")
    monkeypatch.setenv("PIP_CERT", str(bundle))
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example.edu/simple")
    fake_docker.pullable(DEFAULT_BASE)
    build_quietly("course/grader:7")
    (context,) = fake_docker.contexts()
    assert {"host/ca-certificates.crt", "host/pip.conf", f"host/wheels/{wheel.name}"} <= set(context)
    assert not any("1.0.0" in f for f in context)
    build_quietly("course/grader:cuda", "TORCH_INDEX=https://download.pytorch.org/whl/cu128")
    assert not any("wheels" in f for f in fake_docker.contexts()[-1])  # a CUDA build takes its own torch


def test_the_hosts_reachable_indexes_are_carried_as_a_pip_conf(monkeypatch):
    """A mirror the host's pip uses is used in the build too; folders of this host (file://) are not."""
    settings = {"index-url": "https://mirror.example.edu/simple", "trusted-host": "mirror.example.edu",
                "extra-index-url": "file:///opt/pypi/simple https://extra.example.edu/simple", "find-links": "/opt/wheels"}
    assert image_build.host_pip_conf(settings) == (
        "[global]\nindex-url = https://mirror.example.edu/simple\nextra-index-url = https://extra.example.edu/simple\n"
        "trusted-host = mirror.example.edu\n")
    assert image_build.host_pip_conf({"extra-index-url": "file:///opt/pypi/simple", "find-links": "/opt/wheels"}) == ""
    monkeypatch.setenv("PIP_INDEX_URL", "https://env-mirror.example.edu/simple")  # the environment wins, as in pip
    assert "index-url = https://env-mirror.example.edu/simple\n" in image_build.host_pip_conf(image_build.pip_settings())


def test_indexes_written_on_several_lines_of_a_pip_conf_are_all_carried(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url =\n    https://a.example.edu/simple\n    https://b.example.edu/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    carried = image_build.host_pip_conf(image_build.pip_settings())
    assert "extra-index-url = https://a.example.edu/simple https://b.example.edu/simple\n" in carried


# --- refusing an image that does not hold this checkout's worker ---------------------------------------


def test_an_image_labelled_with_this_checkouts_digest_is_used(fake_docker):
    fake_docker.images({"autograder-worker:latest": {LABEL: CURRENT, "maintainer": "course"}})
    assert DockerSandbox().unavailable() is None
    sandbox, notes = choose("auto")
    assert (sandbox.name, sandbox.image, notes) == ("docker", "autograder-worker:latest", ["sandbox: docker"])
    assert ["image", "inspect", "autograder-worker:latest"] in fake_docker.calls()


def test_a_stale_image_is_refused_with_the_command_that_rebuilds_it(fake_docker):
    fake_docker.images({"autograder-worker:latest": {LABEL: OTHER}})
    with pytest.raises(SandboxUnavailable) as refused:
        choose("docker")
    reason = str(refused.value)
    assert "the grading image autograder-worker:latest is stale" in reason
    assert f"other worker modules than those of {ROOT} " in reason  # which checkout
    assert f"{LABEL} {OTHER[:12]}..., this checkout's {CURRENT[:12]}..." in reason
    assert quoted_command(reason) == rebuild("autograder-worker:latest")


@pytest.mark.parametrize("labels", [None, {}, {"org.opencontainers.image.title": "someone else's worker"}])
def test_an_unlabelled_image_is_refused_as_foreign(fake_docker, labels):
    fake_docker.images({"autograder-worker:latest": labels})
    reason = DockerSandbox().unavailable()
    assert reason.startswith(f"the grading image autograder-worker:latest has no {LABEL} label")
    assert f"holds the worker of {ROOT} " in reason and "foreign" in reason
    assert quoted_command(reason) == rebuild("autograder-worker:latest")


def test_auto_falls_back_from_a_stale_image_saying_why(fake_docker):
    fake_docker.images({"autograder-worker:latest": {LABEL: OTHER}})
    sandbox, notes = choose("auto")
    assert sandbox.name in ("namespace", "process")
    assert notes[0].startswith(f"sandbox: {sandbox.name} (not docker: the grading image autograder-worker:latest is stale")
    assert shlex.join(rebuild("autograder-worker:latest")) in notes[0]


def test_a_missing_image_gets_the_command_that_builds_it(fake_docker):
    reason = DockerSandbox(image="course/grader:7").unavailable()
    assert reason.startswith("the grading image course/grader:7 is not built; build it with `autograder build-image")
    assert quoted_command(reason) == rebuild("course/grader:7")


def test_unreadable_inspect_output_is_shown(fake_docker):
    fake_docker.answer_inspect_with("autograder-worker:latest", "<html>proxy error</html>")
    reason = DockerSandbox().unavailable()
    assert reason.startswith("cannot read the labels of the grading image autograder-worker:latest") and "proxy error" in reason


# --- each sandbox probes its own image, anew -----------------------------------------------------------


def test_each_sandbox_probes_its_own_image(fake_docker):
    fake_docker.images({"course/grader:new": {LABEL: CURRENT}, "course/grader:old": {LABEL: OTHER}})
    old, new = DockerSandbox(image="course/grader:old"), DockerSandbox(image="course/grader:new")
    assert "course/grader:old is stale" in old.unavailable()
    assert new.unavailable() is None
    assert "course/grader:old is stale" in old.unavailable()  # the answer for one is not the other's
    inspected_names = [call[2] for call in fake_docker.calls() if call[:2] == ["image", "inspect"]]
    assert inspected_names == ["course/grader:old", "course/grader:new", "course/grader:old"]


def test_a_rebuilt_image_is_probed_anew(fake_docker):
    sandbox = DockerSandbox(image="course/grader:7")
    assert "is not built" in sandbox.unavailable()
    fake_docker.images({"course/grader:7": {LABEL: OTHER}})
    assert "is stale" in sandbox.unavailable()
    fake_docker.images({"course/grader:7": {LABEL: CURRENT}})
    assert sandbox.unavailable() is None


def test_the_default_image_is_read_when_a_sandbox_is_made(fake_docker, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_IMAGE", "course/grader:env")
    fake_docker.images({"course/grader:env": {LABEL: CURRENT}})
    sandbox, _ = choose("docker")
    assert sandbox.image == "course/grader:env"


def test_grade_with_a_stale_image_says_how_to_rebuild_it(fake_docker):
    fake_docker.images({"course/grader:7": {LABEL: OTHER}})
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "hw1", str(ROOT / "reference" / "hw1"), "--sandbox", "docker"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AUTOGRADER_IMAGE": "course/grader:7"},
    )
    assert run.returncode == 2 and run.stdout == ""
    assert "the grading image course/grader:7 is stale" in run.stderr
    assert shlex.join(rebuild("course/grader:7")) in run.stderr


# --- make test-docker where no engine can run ---------------------------------------------------------


def test_make_test_docker_skips_saying_why_where_no_engine_can_start(tmp_path):
    """Not root, and no engine answering (a socket nobody listens on): .ci/test-docker says why and
    passes, as a skip does, without building or testing anything."""
    command = [str(ROOT / ".ci" / "test-docker")]
    if os.geteuid() == 0:  # as nobody, who may not start dockerd
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/docker.sock", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ("make test-docker: skipped: no Docker engine answers (`docker info`), "
                                  "and starting one needs root")


def test_workers_ask_for_the_gpus_only_where_cuda_checks_run(monkeypatch, tmp_path):
    """The grader starts its workers with cuda=True (docker: --gpus all) on a host with CUDA, for an
    assignment with CUDA checks; never for one without, nor on a host without CUDA."""
    import torch

    from autograder.engine.assignment import load_reference
    from autograder.engine.runner import grade
    from autograder.sandboxes.process import ProcessSandbox

    asked = []

    class Recording(ProcessSandbox):
        def start(self, submission, cuda=False):
            asked.append(cuda)
            return super().start(submission, cuda)

    hw2 = load_reference("hw2", ROOT / "reference" / "hw2")
    cuda_twin = next(spec for spec in hw2.checks if spec.device == "cuda")
    hw2.checks = [next(spec for spec in hw2.checks if spec.id == cuda_twin.twin), cuda_twin]
    tiny = load_reference("tiny", ROOT / "tests" / "fixtures" / "tinycourse" / "reference" / "tiny")
    for has_cuda in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
        for assignment, expected in ((hw2, has_cuda), (tiny, False)):
            asked.clear()
            grade(assignment, assignment.reference_dir, Recording(), "alice")
            assert asked and set(asked) == {expected}, (assignment.name, has_cuda, asked)
