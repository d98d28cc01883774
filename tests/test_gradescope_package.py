"""`autograder gradescope`: the zip's layout, and its run_autograder run as Gradescope runs it, against
a fake /autograder tree (AUTOGRADER_GRADESCOPE_ROOT), with this environment's autograder on PATH in
place of the one setup.sh would install."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from hw1_variants import VARIANTS
from processes import live_processes
from sandboxing import CHOSEN
from variants import apply
from world_python import world_enterable_folder, world_runnable_venv

from autograder.reports.gradescope import VISIBILITIES

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
SOLUTION = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")
BIN = Path(sys.executable).parent  # this environment's python3 and autograder
SANDBOX = CHOSEN or "process"  # Gradescope's runs use auto; the process sandbox keeps this test quick
ADA = {"sid": "s1", "email": "ada@example.edu", "name": "Ada Lovelace"}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """hw1's package, built as an instructor would (hidden checks' tests hidden), unzipped as Gradescope does."""
    folder = tmp_path_factory.mktemp("gradescope")
    zip_path = folder / "autograder.zip"
    run = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "hw1", "-o", str(zip_path), "--hidden-visibility", "hidden"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"wrote {zip_path}" in run.stderr
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder / "source")
        for info in archive.infolist():  # as unzip does; extractall drops the permissions
            (folder / "source" / info.filename).chmod(info.external_attr >> 16 & 0o777)
    return folder / "source"


def fake_root(tmp_path: Path, package: Path, user: dict = ADA) -> Path:
    """An /autograder with the package in source/, Gradescope's copy of run_autograder, and an empty submission/."""
    root = tmp_path / "autograder"
    shutil.copytree(package, root / "source")
    shutil.copy2(package / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "submission_metadata.json").write_text(json.dumps({"users": [user], "created_at": "2026-11-20T10:00:00Z"}))
    return root


def run_autograder(root: Path, first_on_path: Path = BIN, sandbox: str | None = SANDBOX) -> dict:
    """sandbox None: the package's own choice (AUTOGRADER_GRADESCOPE_SANDBOX unset)."""
    env = {**os.environ, "PATH": f"{first_on_path}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
           "AUTOGRADER_GRADESCOPE_ROOT": str(root)}
    env.pop("AUTOGRADER_GRADESCOPE_SANDBOX", None)
    if sandbox is not None:
        env["AUTOGRADER_GRADESCOPE_SANDBOX"] = sandbox
    run = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert isinstance(results["score"], float) and isinstance(results["output"], str)
    for test in results.get("tests", []):  # Gradescope's spec
        assert isinstance(test["name"], str) and isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITIES
    return results


def solution_files() -> dict[str, bytes]:
    return {name: (REFERENCE / name).read_bytes() for name in SOLUTION}


def test_package_layout(package):
    names = {path.relative_to(package).as_posix() for path in package.rglob("*") if path.is_file()}
    tops = {name.split("/")[0] for name in names}
    wheel = next(name for name in tops if name.endswith(".whl"))
    assert wheel.startswith("dl_autograder-0.1.0-"), wheel  # the distribution's name, not PyPI's unrelated autograder
    assert tops == {"setup.sh", "run_autograder", wheel, "course"}
    assert os.access(package / "run_autograder", os.X_OK)
    assert not any(part in (".git", "__pycache__") or part.endswith(".pyc") for name in names for part in name.split("/"))
    assert {name.split("/")[2] for name in names if name.startswith("course/reference/")} == {"hw1", "grading-secret"}  # no other homework
    assert (package / "course/reference/grading-secret").read_text().strip() == (ROOT / "reference/grading-secret").read_text().strip()
    assert {"course/course.toml", "course/reference/hw1/hidden_checks.py", *(f"course/reference/hw1/{n}" for n in SOLUTION)} <= names
    with zipfile.ZipFile(io.BytesIO((package / wheel).read_bytes())) as built:
        assert {"autograder/cli.py", "autograder/reports/gradescope.py"} <= set(built.namelist())
    setup = (package / "setup.sh").read_text()
    assert "install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert [line for line in setup.splitlines() if "torch" in line and "install" in line and "==" not in line] == []
    assert f'install "$root/source/"{wheel}' in setup
    assert "hidden_visibility=hidden" in (package / "run_autograder").read_text()
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(package / script)]).returncode == 0


def test_gradescope_refuses_an_unknown_homework(tmp_path):
    run = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "hw9", "-o", str(tmp_path / "a.zip")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and not (tmp_path / "a.zip").exists()
    assert "'hw9' is not a homework of" in run.stderr and "the homeworks there are hw1, hw2" in run.stderr


def test_buggy_submission_in_a_zipped_folder_loses_the_units_points(package, tmp_path):
    root = fake_root(tmp_path, package, {**ADA, "sid": None})
    work = tmp_path / "work"
    work.mkdir()
    for name, content in solution_files().items():
        (work / name).write_bytes(content)
    apply(next(v for v in VARIANTS if v.name == "sigmoid_wrong_derivative"), work)
    with zipfile.ZipFile(root / "submission" / "upload.zip", "w") as upload:
        for name in SOLUTION:
            upload.write(work / name, f"my_hw1/{name}")
    results = run_autograder(root)
    failed = [t for t in results["tests"] if t["status"] != "passed"]
    assert failed and all(t["name"].startswith("activations.Sigmoid.") and t["score"] == 0 for t in failed)
    assert sum(t["max_score"] for t in results["tests"]) == 15.0  # every check, each passed one at full points
    assert results["score"] == 15.0 - sum(t["max_score"] for t in failed)
    assert "read from inside upload.zip" in results["output"] and "my_hw1/" in results["output"]
    hidden = [t for t in results["tests"] if t["output"].startswith("hidden check")]
    assert hidden and {t["visibility"] for t in hidden} == {"hidden"}  # as the package was built
    assert {t["visibility"] for t in results["tests"] if t not in hidden} == {"visible"}


def test_empty_submission_scores_zero_and_says_why(package, tmp_path):
    results = run_autograder(fake_root(tmp_path, package))
    assert results["score"] == 0.0 and all(t["score"] == 0.0 for t in results["tests"])
    assert "none of the assignment's files" in results["output"]


def test_grading_that_cannot_run_still_writes_results(package, tmp_path):
    """A grader that crashes: score 0 and its last words; the command line it got names the student by email."""
    root = fake_root(tmp_path, package, {"sid": "", "email": "ada@example.edu", "name": "Ada"})
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "autograder").write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print('Traceback (most recent call last):', file=sys.stderr)\n"
        "sys.exit('RuntimeError: the worker exploded\\x1b[8m hidden\\u202e')\n")  # its last words quote student text
    (fakes / "autograder").chmod(0o755)
    results = run_autograder(root, first_on_path=fakes)
    assert results["score"] == 0.0 and "tests" not in results
    assert "could not grade this submission: RuntimeError: the worker exploded" in results["output"]
    assert all(c.isprintable() or c == "\n" for c in results["output"]), repr(results["output"])
    assert json.loads((tmp_path / "argv.json").read_text()) == [
        "grade", "hw1", str(root / "submission"), "--format", "gradescope", "--hidden-visibility", "hidden",
        "--root", str(root / "source" / "course"), "--sandbox", SANDBOX, "--student=ada@example.edu"]


def test_without_a_working_python_results_still_say_something(package, tmp_path):
    root = fake_root(tmp_path, package)
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name in ("python3", "autograder"):
        (fakes / name).write_text("#!/bin/sh\nexit 127\n")
        (fakes / name).chmod(0o755)
    results = run_autograder(root, first_on_path=fakes)
    assert results["score"] == 0.0 and "could not run" in results["output"]


# Hostile code in Gradescope's container, where grading runs as root. Two hw1 units turn hostile:
# threshold_neuron reads the package's source (reference, hidden checks, course secret) and shows
# what it read in its check's message and its output; perceptron_fit leaves a daemon in a session of
# its own that waits for results.json, then overwrites it with full marks.
REWRITE_WAIT = 5.0  # seconds after run_autograder returns: the daemon rewrites within about 1 s of seeing results.json
HOSTILE = """

import ctypes
import json
import os
import time

import torch


def threshold_neuron(x, w, theta):
    seen = []
    for path in __READS__:
        try:
            with open(path, errors="replace") as stolen:
                seen.append(f"{path}: {stolen.read(300)!r}")
        except OSError as exc:
            seen.append(f"{path}: {type(exc).__name__}")
    print("\\n".join(seen))
    raise ValueError("read " + " | ".join(seen))


def perceptron_fit(X, y, lr=1.0, epochs=10):
    if os.fork() == 0:
        os.setsid()  # out of the check's process group and session
        if os.fork() == 0:
            ctypes.CDLL(None).prctl(15, __NAME__.encode(), 0, 0, 0)  # PR_SET_NAME: findable by the test
            deadline = time.monotonic() + 300
            while not os.path.exists(__RESULTS__) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # run_autograder is done with it
            try:
                with open(__RESULTS__, "w") as results:
                    json.dump({"score": 15.0, "output": "rewritten by the daemon"}, results)
            except OSError:
                pass
        os._exit(0)
    return torch.zeros(X.shape[1], dtype=X.dtype), torch.zeros((), dtype=X.dtype)
"""


@pytest.fixture(scope="module", params=["process", "auto"])
def hostile(request, package):
    """The hostile submission graded by run_autograder as root: with the process sandbox forced (as where
    the container refuses namespaces), and with the package's own choice. The fake /autograder lies in a
    folder every user can enter, so that only the package's own modes keep the student's uid out."""
    if os.geteuid() != 0:
        pytest.skip("Gradescope runs the autograder as root; so must this test")
    visible = world_enterable_folder("autograder-fake-gradescope-")
    name = f"agdaemon{os.getpid()}"[:15]
    try:
        root = fake_root(visible, package)
        world_runnable_venv(root / "venv")  # as setup.sh makes it: the worker's uid can run its Python
        course = root / "source" / "course" / "reference"
        marker = f"never-shown-{uuid.uuid4().hex}"
        for path in (course / "hw1" / "hidden_checks.py", course / "hw1" / "neurons.py"):
            path.write_text(f"# {marker}\n{path.read_text()}")
        reads = [str(course / "hw1" / "hidden_checks.py"), str(course / "hw1" / "neurons.py"), str(course / "grading-secret")]
        modes_before = {path: path.stat().st_mode & 0o777 for path in (root / "source", course / "hw1" / "hidden_checks.py")}
        for file, content in solution_files().items():
            (root / "submission" / file).write_bytes(content)
        results_path = root / "results" / "results.json"
        code = HOSTILE.replace("__READS__", repr(reads)).replace("__NAME__", repr(name)).replace("__RESULTS__", repr(str(results_path)))
        with open(root / "submission" / "neurons.py", "a") as neurons:
            neurons.write(code)
        first = run_autograder(root, sandbox=None if request.param == "auto" else request.param)
        first_text = results_path.read_text()
        time.sleep(REWRITE_WAIT)
        yield {
            "sandbox": request.param, "root": root, "first": first, "first_text": first_text, "later_text": results_path.read_text(),
            "marker": marker, "secret": (course / "grading-secret").read_text().strip(), "modes_before": modes_before,
            "left": _processes_named(name),
        }
    finally:
        for pid in _processes_named(name):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(visible)


def test_trusted_files_are_root_only_before_grading_starts(package, tmp_path):
    """What grade finds when it starts (a stand-in records it): the source, the upload, the results and the
    metadata closed to every other user; then results.json is what grade printed, renamed into place whole."""
    root = fake_root(tmp_path, package)
    fakes = tmp_path / "bin"
    fakes.mkdir()
    paths = {"source": root / "source", "submission": root / "submission", "results": root / "results",
             "metadata": root / "submission_metadata.json"}
    (fakes / "autograder").write_text(
        f"#!{sys.executable}\nimport json, os\n"
        f"paths = {json.dumps({k: str(v) for k, v in paths.items()})}\n"
        f"open({str(tmp_path / 'modes.json')!r}, 'w').write(json.dumps({{k: oct(os.stat(p).st_mode & 0o777) for k, p in paths.items()}}))\n"
        "print(json.dumps({'score': 1.5, 'output': 'graded', 'tests': []}))\n")
    (fakes / "autograder").chmod(0o755)
    results = run_autograder(root, first_on_path=fakes)
    modes = json.loads((tmp_path / "modes.json").read_text())
    assert modes == {"source": "0o700", "submission": "0o700", "results": "0o700", "metadata": "0o600"}, modes
    assert results == {"score": 1.5, "output": "graded", "tests": []}
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]  # no temporary file left


@pytest.mark.slow
def test_a_daemon_left_by_student_code_cannot_rewrite_the_results(hostile):
    first, later = hostile["first"], json.loads(hostile["later_text"])
    lost = sorted(t["name"] for t in first["tests"] if t["score"] < t["max_score"])
    assert lost and all(name.startswith(("neurons.threshold_neuron.", "neurons.perceptron_fit.")) for name in lost), lost
    assert first["score"] == 15.0 - sum(t["max_score"] for t in first["tests"] if t["name"] in lost)
    assert later == first, (f"{hostile['sandbox']}: results.json changed {REWRITE_WAIT:g} s after run_autograder returned: "
                            f"score {first['score']} -> {later.get('score')}, output {later.get('output')!r}")
    assert hostile["left"] == [], f"{hostile['sandbox']}: the student's daemon outlived grading: pids {hostile['left']}"


@pytest.mark.slow
def test_student_code_reads_nothing_of_the_source(hostile):
    text, root = hostile["first_text"], hostile["root"]  # as run_autograder wrote it (the daemon test checks it stays)
    assert hostile["marker"] not in text, "the reference or hidden checks reached results.json"
    assert hostile["secret"] not in text, "the course secret reached results.json"
    message = next(t["output"] for t in json.loads(text)["tests"] if t["name"].startswith("neurons.threshold_neuron."))
    # The reads were tried and refused: root-only modes for the process sandbox, not in its view for a jail.
    refusals = ("PermissionError",) if hostile["sandbox"] == "process" else ("PermissionError", "FileNotFoundError")
    assert "grading-secret: " in message and any(r in message for r in refusals), message
    before = hostile["modes_before"]
    assert set(before.values()) == {0o755, 0o644}, f"the package was readable by everyone before grading: {before}"
    assert (root / "source").stat().st_mode & 0o777 == 0o700
    assert (root / "results").stat().st_mode & 0o777 == 0o700
    assert (root / "submission_metadata.json").stat().st_mode & 0o777 == 0o600


def _processes_named(name: str) -> list[int]:
    return live_processes(lambda status: f"Name:\t{name}\n" in status)
