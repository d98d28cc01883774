"""The command answers at once: --version, --help, argument errors and export never import torch
(seconds to load) nor numpy, and `check` says what it checks before torch loads.

Each command runs as a user runs it, in a process of its own, with Python's import profiling on
(`-X importtime`, or PYTHONPROFILEIMPORTTIME for the console script): every module the process
imports is then listed on stderr as its import ends, in order, between the command's own lines.
How fast the answers come is measured by bench/cli_startup.py, not here."""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import autograder
from autograder.cli import main
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.gradebook.store import Gradebook

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
CONSOLE_SCRIPT = Path(sys.executable).parent / "autograder"
HEAVY = ("torch", "numpy")  # top-level packages whose import costs seconds
IMPORTED = re.compile(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)")


class Run:
    """A finished command: exit code, stdout, its own stderr lines, and the modules it imported, in order."""

    def __init__(self, completed: subprocess.CompletedProcess):
        self.returncode, self.stdout = completed.returncode, completed.stdout
        self.lines = completed.stderr.splitlines()  # its stderr and the profiler's lines, interleaved as written
        self.stderr = "\n".join(line for line in self.lines if not line.startswith("import time:"))
        self.modules = [match[1] for line in self.lines if (match := IMPORTED.fullmatch(line))]

    def heavy(self) -> list[str]:
        return [module for module in self.modules if module.split(".")[0] in HEAVY]

    def assert_light(self, what: str) -> None:
        assert self.modules, f"{what}: no import profile on stderr, so nothing is proven:\n{self.stderr}"
        assert not self.heavy(), f"{what} imported {self.heavy()[:5]} ({len(self.heavy())} heavy modules in all)"


def autograder_run(*args: str, cwd: Path = ROOT, console_script: bool = False) -> Run:
    command = [str(CONSOLE_SCRIPT)] if console_script else [sys.executable, "-m", "autograder"]
    completed = subprocess.run([*command, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    return Run(completed)


@pytest.mark.parametrize("console_script", [False, True], ids=["python -m autograder", "console script"])
def test_version_answers_without_torch(console_script):
    if console_script and not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT}")
    run = autograder_run("--version", console_script=console_script)
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith(f", version {autograder.__version__}\n"), run.stdout
    run.assert_light("--version")


@pytest.mark.parametrize("subcommand", ["", *sorted(main.commands)])
def test_help_of_every_command_answers_without_torch(subcommand):
    run = autograder_run(*filter(None, [subcommand]), "--help")
    assert run.returncode == 0, run.stderr
    usage = run.stdout.splitlines()[0] if run.stdout else ""
    assert usage.startswith("Usage: python -m autograder " + (f"{subcommand} [OPTIONS]" if subcommand else "[OPTIONS] COMMAND")), run.stdout
    unlisted = [name for name in main.commands if f"  {name} " not in run.stdout] if not subcommand else []
    assert not unlisted, f"--help does not list {unlisted}:\n{run.stdout}"
    run.assert_light(f"{subcommand or 'autograder'} --help")


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "Error: No such command 'nosuch'."),
    (["grade"], "Error: Missing argument 'ASSIGNMENT'."),
    (["grade", "hw1", ".", "--format", "xml"], "Error: Invalid value for '--format': 'xml' is not one of 'table', 'json'"),
    (["batch", "hw1", ".", "--workers", "0"], "Error: Invalid value for '--workers': 0 is not in the range 1<=x<=256."),
], ids=["unknown command", "missing argument", "bad choice", "out of range"])
def test_argument_errors_exit_2_with_the_reason_without_torch(args, message):
    run = autograder_run(*args)
    assert run.returncode == 2, f"exit {run.returncode}, expected 2 (a usage error)\n{run.stderr}"
    assert message in run.stderr and "Usage: " in run.stderr and run.stdout == "", run.stderr
    run.assert_light(" ".join(args))


def test_export_answers_without_torch(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    with Gradebook(db) as gradebook:
        for student, score in (("ann", 3.0), ("bob", 1.0)):
            checks = [CheckResult("scale.double.values", score, 3.0, "passed" if score == 3.0 else "failed", "", "public")]
            gradebook.record(SubmissionResult("tiny", student, checks), f"hash-{student}", "v1", 1.0)

    exported = autograder_run("export", "--db", str(db), "-o", "-", "--root", str(TINY))
    assert exported.returncode == 0, exported.stderr
    table = [(row["student"], row["tiny"], row["total"]) for row in csv.DictReader(io.StringIO(exported.stdout))]
    assert table == [("ann", "10.00", "10.00"), ("bob", "3.33", "3.33")], exported.stdout
    exported.assert_light("export --format csv")

    for output_format, written in (("gradescope", "bob/results.json"), ("junit", "bob.xml")):
        run = autograder_run("export", "--db", str(db), "--format", output_format, "-o", str(tmp_path / output_format))
        assert run.returncode == 0 and "wrote 2 result(s)" in run.stderr, run.stderr
        assert (tmp_path / output_format / "tiny" / written).is_file(), sorted(map(str, (tmp_path / output_format).rglob("*")))
        run.assert_light(f"export --format {output_format}")
    assert json.loads((tmp_path / "gradescope" / "tiny" / "bob" / "results.json").read_text())["score"] == 1.0


def test_check_says_what_it_checks_before_torch_loads(tmp_path):
    """Its first line comes before any import of torch; a folder with the bundle and no files stops right after."""
    shutil.copytree(ROOT / "assignments" / "hw1" / "public_checks", tmp_path / "public_checks")
    run = autograder_run("check", "hw1", ".", cwd=tmp_path)
    assert run.returncode == 1 and "nothing to check in ." in run.stderr, run.stderr
    own = [index for index, line in enumerate(run.lines) if not line.startswith("import time:")]
    first = run.lines[own[0]]
    assert first == f"checking hw1 in {tmp_path.resolve()} with its public checks (sandbox: process)", run.stderr
    torch_at = next((index for index, line in enumerate(run.lines) if IMPORTED.fullmatch(line) and
                     IMPORTED.fullmatch(line)[1].split(".")[0] == "torch"), None)
    assert torch_at is not None, "loading the bundle imports torch: without it, this test proves no order"
    assert own[0] < torch_at, f"check's first line is stderr line {own[0]}, after torch's first import at line {torch_at}"
