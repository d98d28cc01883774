"""The grading image must hold this checkout's worker: the label that `autograder build-image` gives
it (a hash of the worker's modules), and the docker sandbox's refusal of an image whose label is
missing or differs, with the command that rebuilds it.

No Docker engine runs on this machine, so the tests that need one talk to a fake `docker` executable
put first on PATH (the `fake_docker` fixture): the sandbox reaches Docker only through that command, a
subprocess, and the fake answers `info` and `image inspect` with the JSON a test chose, and records
every command line it was given. Everything on our side of that boundary runs for real."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.sandboxes import SandboxUnavailable, choose
from autograder.sandboxes.docker import (
    LABEL,
    DockerSandbox,
    build_command,
    mismatch,
    worker_module_files,
    worker_modules_digest,
)

ROOT = Path(__file__).resolve().parent.parent
CURRENT = worker_modules_digest(ROOT)
OTHER = "0" * 64

FAKE_DOCKER = '''#!{python}
import json, sys
from pathlib import Path

state = Path({state!r})
with open(state / "calls", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "info":
    print("28.2.2")
elif sys.argv[1:3] == ["image", "inspect"]:
    images = json.loads((state / "images.json").read_text())
    if sys.argv[3] not in images:
        print("[]")
        sys.exit("Error response from daemon: No such image: " + sys.argv[3])
    print(images[sys.argv[3]])
'''


def inspected(name: str, labels: dict | None) -> str:
    """What `docker image inspect name` prints (the fields we read, and a few beside them)."""
    config = {"Cmd": ["python", "-P", "-m", "autograder.protocol.worker", "/submission"], "Labels": labels}
    return json.dumps([{"Id": "sha256:" + "ab" * 32, "RepoTags": [name], "Config": config}], indent=4)


class FakeDocker:
    def __init__(self, state: Path):
        self.state = state
        self.images({})

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


# --- the build command ---------------------------------------------------------------------------------


def test_build_command_labels_the_image_with_the_digest(tmp_path):
    command = build_command("course/grader:7", ROOT, ("BASE=python:3.12-slim",))
    assert command[:2] == ["docker", "build"]
    options = dict(zip(command[2:-1:2], command[3:-1:2]))
    assert options == {
        "-t": "course/grader:7",
        "--label": f"{LABEL}={CURRENT}",
        "--build-arg": "BASE=python:3.12-slim",
        "-f": str(ROOT / "docker" / "Dockerfile"),
    }
    assert command[-1] == str(ROOT)  # absolute: the command runs from any directory
    changed = copy_of_worker(tmp_path)
    (changed / "autograder" / "protocol" / "worker.py").write_text("# changed\n")
    assert f"{LABEL}={worker_modules_digest(changed)}" in build_command("course/grader:7", changed)


def test_build_image_runs_docker_build_with_the_label(fake_docker):
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "build-image", "--image", "course/grader:7", "--build-arg", "TORCH_INDEX=https://x"],
        cwd="/", capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    expected = build_command("course/grader:7", ROOT, ("TORCH_INDEX=https://x",))
    assert fake_docker.calls() == [expected[1:]]
    assert shlex.join(expected) in run.stderr
    # The image that command builds is the one the sandbox accepts.
    label = expected[expected.index("--label") + 1].split("=", 1)
    assert mismatch("course/grader:7", inspected("course/grader:7", dict([label])), ROOT) is None


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
    assert quoted_command(reason) == build_command("autograder-worker:latest", ROOT)


@pytest.mark.parametrize("labels", [None, {}, {"org.opencontainers.image.title": "someone else's worker"}])
def test_an_unlabelled_image_is_refused_as_foreign(fake_docker, labels):
    fake_docker.images({"autograder-worker:latest": labels})
    reason = DockerSandbox().unavailable()
    assert reason.startswith(f"the grading image autograder-worker:latest has no {LABEL} label")
    assert f"holds the worker of {ROOT} " in reason and "foreign" in reason
    assert quoted_command(reason) == build_command("autograder-worker:latest", ROOT)


def test_auto_falls_back_from_a_stale_image_saying_why(fake_docker):
    fake_docker.images({"autograder-worker:latest": {LABEL: OTHER}})
    sandbox, notes = choose("auto")
    assert sandbox.name in ("namespace", "process")
    assert notes[0].startswith(f"sandbox: {sandbox.name} (not docker: the grading image autograder-worker:latest is stale")
    assert shlex.join(build_command("autograder-worker:latest", ROOT)) in notes[0]


def test_a_missing_image_gets_the_command_that_builds_it(fake_docker):
    reason = DockerSandbox(image="course/grader:7").unavailable()
    assert reason.startswith("the grading image course/grader:7 is not built; build it with `docker build")
    assert quoted_command(reason) == build_command("course/grader:7", ROOT)


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
    assert shlex.join(build_command("course/grader:7", ROOT)) in run.stderr
