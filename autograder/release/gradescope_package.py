"""`autograder gradescope <hw>`: the zip an instructor uploads as an assignment's autograder on
Gradescope (https://gradescope-autograders.readthedocs.io/en/latest/specs/).

Gradescope unpacks the zip into /autograder/source and runs setup.sh once, when it builds the
grading image. For each submission it puts the student's upload in /autograder/submission (and who
handed it in in /autograder/submission_metadata.json), runs a copy of run_autograder in
/autograder, and shows the student /autograder/results/results.json. At the zip's top:

    setup.sh              a virtual environment /autograder/venv with a recent enough Python,
                          torch (pinned exactly as in pyproject.toml, the CPU build) and the wheel below
    run_autograder        `autograder grade <hw> /autograder/submission --format gradescope` into
                          results.json: the student id from the metadata, the hidden checks' visibility
                          chosen here; a results.json scoring 0 that says why when grading cannot run
    dl_autograder-<version>-py3-none-any.whl
                          this package, built from the checkout this command runs from, so Gradescope
                          grades with the code the instructor tested
    course/course.toml    the course (its grading settings)
    course/reference/<hw>/
                          the reference solutions and the public and hidden checks of this homework
                          only: students never see the zip
    course/reference/grading-secret
                          the course secret that keys hidden inputs (checks/seeds.py)

Inside the image the student's code runs in the sandbox `auto` picks (run_autograder's output, which
only instructors see, says which): the namespace sandbox where the container allows namespaces,
else the process sandbox as root, which runs it as an unprivileged uid of its own
(sandboxes/process.py). Before anything of the student's runs, run_autograder makes the source, the
upload, the metadata and the results folder root-only; grading kills every process of the worker's
uid before it prints the result, and run_autograder alone writes results.json (a temporary file
renamed, in the root-only folder), so nothing the student's code left behind can read the
reference or rewrite the score.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import autograder
from autograder.checks.seeds import SECRET_FILE
from autograder.engine.assignment import Assignment
from autograder.engine.course import COURSE_FILE
from autograder.release.install import CPU_WHEELS, TORCH
from autograder.reports.gradescope import DEFAULT_HIDDEN_VISIBILITY, VISIBILITIES

CHECKOUT = Path(autograder.__file__).resolve().parent.parent
COURSE_DIR = "course"
SCRIPT_MODE, FILE_MODE = 0o755, 0o644


class PackageError(Exception):
    """The package cannot be built from here."""


def build(assignment: Assignment, root: Path, output: Path, hidden_visibility: str = DEFAULT_HIDDEN_VISIBILITY) -> Path:
    """Write the Gradescope zip of assignment (loaded from root/reference/<name>) to output; returns output."""
    if hidden_visibility not in VISIBILITIES:
        raise PackageError(f"hidden visibility must be one of {', '.join(VISIBILITIES)}, not {hidden_visibility!r}")
    project = project_metadata(CHECKOUT / "pyproject.toml")
    python = _least_python(project)
    with tempfile.TemporaryDirectory(prefix="autograder-gradescope-") as work:
        wheel = build_wheel(project, Path(work))
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
            _add(archive, "setup.sh", setup_script(assignment.name, wheel.name, python).encode(), SCRIPT_MODE)
            _add(archive, "run_autograder", run_script(assignment.name, hidden_visibility).encode(), SCRIPT_MODE)
            _add(archive, wheel.name, wheel.read_bytes())
            if (root / COURSE_FILE).is_file():
                _add(archive, f"{COURSE_DIR}/{COURSE_FILE}", (root / COURSE_FILE).read_bytes())
            reference = assignment.reference_dir
            # The course secret keys the hidden inputs: the package's grades are this course's grades.
            _add(archive, f"{COURSE_DIR}/reference/{SECRET_FILE}", assignment.secret + b"\n")
            for path in _material_files(reference):
                _add(archive, f"{COURSE_DIR}/reference/{assignment.name}/{path.relative_to(reference).as_posix()}", path.read_bytes())
    return output


def build_wheel(project: dict, folder: Path) -> Path:
    """This package as a wheel in folder. Built from a copy of its source: building in place would write
    build/ into a checkout others may be working in."""
    source = folder / "source"
    shutil.copytree(CHECKOUT / "autograder", source / "autograder", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", project.get("readme")):
        if name:
            shutil.copy2(CHECKOUT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(folder / "wheel"), str(source)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise PackageError(f"building the autograder's wheel failed ({shlex.join(command)}):\n{run.stderr.strip()}")
    return next((folder / "wheel").glob("*.whl"))


def project_metadata(pyproject: Path) -> dict:
    """The [project] table of pyproject.toml."""
    if not pyproject.is_file():
        raise PackageError(f"no {pyproject}: the package is built from the autograder's checkout, not from an installed copy")
    return tomllib.loads(pyproject.read_text())["project"]


def _least_python(project: dict) -> tuple[int, int]:
    least = re.fullmatch(r">=\s*3\.(\d+)", project.get("requires-python", "").strip())
    if not least:
        raise PackageError("pyproject.toml's requires-python must read >=3.N for setup.sh to pick a Python")
    return 3, int(least.group(1))


def _material_files(folder: Path) -> list[Path]:
    """The files of folder, less hidden ones (.git and the like) and Python's caches."""
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(folder).parts)
    )


def _add(archive: zipfile.ZipFile, name: str, content: bytes, mode: int = FILE_MODE) -> None:
    info = zipfile.ZipInfo(name, time.localtime()[:6])
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions, as unzip restores them
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, content)


def _fill(template: str, **values) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", shlex.quote(str(value)))
    return template


def setup_script(assignment: str, wheel: str, python: tuple[int, int]) -> str:
    return _fill(SETUP, ASSIGNMENT=assignment, WHEEL=wheel, TORCH=TORCH, CPU_WHEELS=CPU_WHEELS,
                 PYTHON=f"python{python[0]}.{python[1]}", VERSION_CHECK=f"import sys; sys.exit(sys.version_info < {python})")


def run_script(assignment: str, hidden_visibility: str) -> str:
    return _fill(RUN, ASSIGNMENT=assignment, HIDDEN_VISIBILITY=hidden_visibility, COURSE_DIR=COURSE_DIR)


SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the grading image (apt-get update has run).
# Written by `autograder gradescope @ASSIGNMENT@` (autograder/release/gradescope_package.py).
set -euxo pipefail
root="${AUTOGRADER_GRADESCOPE_ROOT:-/autograder}"

# A virtual environment: Ubuntu's python3 refuses pip installs (PEP 668) and may be too old, in
# which case apt has the version the autograder needs beside it.
if python3 -c @VERSION_CHECK@; then
    python=python3
    apt-get install -y python3-venv
else
    python=@PYTHON@
    apt-get install -y "$python" "$python-venv"
fi
"$python" -m venv "$root/venv"
pip="$root/venv/bin/pip"
"$pip" install --upgrade pip
# torch's CPU build: Gradescope grades on CPU, and PyPI's torch pulls the CUDA libraries (gigabytes).
"$pip" install @TORCH@ --index-url @CPU_WHEELS@
# The autograder, built from the instructor's checkout; its own torch pin is met by the line above.
"$pip" install "$root/source/"@WHEEL@
"$root/venv/bin/autograder" --version
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this (its copy, /autograder/run_autograder) for each submission.
# Written by `autograder gradescope @ASSIGNMENT@` (autograder/release/gradescope_package.py).
#
# `autograder grade` reads the upload as a batch reads a student's folder (the files at its top, in
# a folder, or inside a zip) and prints Gradescope's results.json. When grading cannot run at all,
# this still writes one, scoring 0 and saying why: without it students see nothing useful.
# AUTOGRADER_GRADESCOPE_ROOT moves /autograder (the tests run this against a fake tree);
# AUTOGRADER_GRADESCOPE_SANDBOX picks the sandbox (default auto: the strongest available).
set -u
assignment=@ASSIGNMENT@
hidden_visibility=@HIDDEN_VISIBILITY@
root="${AUTOGRADER_GRADESCOPE_ROOT:-/autograder}"
results="$root/results/results.json"
if [ -d "$root/venv/bin" ]; then PATH="$root/venv/bin:$PATH"; fi  # where setup.sh installed the autograder
mkdir -p "$root/results"
rm -f "$results"
# Root-only before any student code runs (as the process sandbox's unprivileged uid it cannot enter
# them): the reference, hidden checks and course secret, the results, the upload (grading reads a
# staged copy) and who handed it in. The venv stays readable: the worker runs its Python.
chmod 700 "$root/source" "$root/results" "$root/submission"
chmod 600 "$root/submission_metadata.json" 2>/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The student's id seeds the hidden checks' inputs: Gradescope's sid, else the email, else the name.
student="$(python3 - "$root/submission_metadata.json" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        user = json.load(f)["users"][0]  # a group's submission: its first member
except (OSError, ValueError, LookupError, TypeError):
    user = {}
ids = [str(user.get(key) or "").strip() for key in ("sid", "email", "name")] if isinstance(user, dict) else []
print(next((i for i in ids if i), "anonymous"))
PY
)"

autograder grade "$assignment" "$root/submission" --format gradescope --hidden-visibility "$hidden_visibility" \\
    --root "$root/source/"@COURSE_DIR@ --sandbox "${AUTOGRADER_GRADESCOPE_SANDBOX:-auto}" --student="$student" \\
    >"$work/results.json" 2>"$work/log"
status=$?
cat "$work/log" >&2  # for the instructor: Gradescope keeps this script's output

# Keep grade's results.json if it is one; else score 0 with the last line grade said. Written whole
# or not at all: a temporary file in the root-only results folder, renamed.
python3 - "$work/results.json" "$results" "$work/log" "$status" <<'PY'
import json, os, sys, tempfile
graded, results, log, status = sys.argv[1:]
try:
    with open(graded, encoding="utf-8") as f:
        result = json.load(f)
    usable = status == "0" and isinstance(result, dict) and isinstance(result.get("score"), (int, float))
except (OSError, ValueError):
    usable = False
if not usable:
    with open(log, encoding="utf-8", errors="replace") as f:
        said = [line.strip() for line in f if line.strip()]
    reason = said[-1] if said else f"it stopped with exit status {status}, saying nothing"
    # Printable characters only (no escapes, controls, bidi or invisible ones): the line may quote the
    # student's text, and this must work when the autograder itself cannot be imported.
    reason = "".join(c for c in reason if c.isprintable())
    output = f"The autograder could not grade this submission: {reason}\\nYour instructor can see the details and grade it again."
    result = {"score": 0.0, "output": output, "visibility": "visible", "stdout_visibility": "hidden"}
fd, written = tempfile.mkstemp(dir=os.path.dirname(results), prefix=".results-")
with open(fd, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
os.replace(written, results)
PY
if [ ! -s "$results" ]; then  # not even python3 ran
    echo '{"score": 0.0, "output": "The autograder could not run here; please tell your instructor."}' >"$results"
fi
"""
