"""`autograder release <hw>`: reference/<hw>/ -> assignments/<hw>/.

* stubs: each solution file with its `# BEGIN SOLUTION` ... `# END SOLUTION`
  regions replaced by `raise NotImplementedError(...)`;
* README.md: reference/<hw>/README.md with the points table filled in and, after its first heading's
  text, how to install the autograder (release/install.py) from course.toml's [release] package;
* public_checks/: the public checks' code and, in manifest.json, everything they
  drew from the tape (inputs, the reference's answers, and the arguments it was
  asked with) when run against the reference, so `autograder check` can replay
  them without the reference (checks/tape.py); and the units' signatures, which
  `autograder submit` holds student files to;
* <hw>.ipynb: the notebook written from reference/<hw>/notebook.py (release/notebook.py);
* .github/workflows/autograde.yml: the public checks on every push (release/workflow.py).
"""

from __future__ import annotations

import ast
import json
import shutil
from collections import defaultdict
from pathlib import Path

from autograder.checks.parsing import parse
from autograder.checks.seeds import PUBLIC_STUDENT
from autograder.checks.tape import RecordingTape, recording_difference
from autograder.engine.assignment import (
    BUNDLE_CODE,
    BUNDLE_DIR,
    BUNDLE_MANIFEST,
    NOTEBOOK_TEMPLATE,
    PUBLIC_CHECKS,
    Assignment,
    load_reference,
)
from autograder.engine.course import COURSE_FILE, load_course
from autograder.engine.runner import run_check
from autograder.protocol.client import Worker
from autograder.release.install import PackageSettingError, check_package_setting, readme_section, with_section
from autograder.release.notebook import build_notebook
from autograder.release.workflow import WORKFLOW_PATH, workflow
from autograder.submission.signatures import signatures_of

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
POINTS_MARKER = "<!-- POINTS -->"
README_TEMPLATE = "README.md"


class ReleaseError(Exception):
    pass


def release(name: str, root: Path, sandbox, out: Path | None = None) -> list[Path]:
    reference_dir = root / "reference" / name
    out = out or root / "assignments" / name
    try:
        package = check_package_setting(load_course(root).package, str(root / COURSE_FILE))
    except PackageSettingError as exc:
        raise ReleaseError(str(exc)) from None
    assignment = load_reference(name, reference_dir)
    template = reference_dir / README_TEMPLATE
    if not template.is_file():
        # No README would leave students without the task and without how to install: refused, not guessed.
        raise ReleaseError(f"{template} is missing: the released README is written from it (what to implement; "
                           f"{POINTS_MARKER} where the points table goes; the Install section is added after its "
                           f"first heading's text). Write one, even just a heading: # {name}")
    files: dict[str, str] = {}
    for module in assignment.modules:
        files[f"{module}.py"] = make_stub((reference_dir / f"{module}.py").read_text(), f"{module}.py")
    readme = template.read_text().replace(POINTS_MARKER, points_table(assignment))
    files[README_TEMPLATE] = with_section(readme, readme_section(name, package))
    files[f"{BUNDLE_DIR}/{BUNDLE_CODE}"] = (reference_dir / PUBLIC_CHECKS).read_text()
    files[f"{BUNDLE_DIR}/{BUNDLE_MANIFEST}"] = manifest_text(
        {"assignment": name, "recordings": record_public(assignment, sandbox),
         "signatures": signatures_of(reference_dir, assignment.modules)}
    )
    notebook_template = reference_dir / NOTEBOOK_TEMPLATE
    if notebook_template.is_file():
        files[f"{name}.ipynb"] = build_notebook(notebook_template.read_text())
    files[WORKFLOW_PATH] = workflow(name, package)
    if out.exists():
        shutil.rmtree(out)
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def manifest_text(manifest: dict) -> str:
    """manifest.json: indented, each tape entry on a line of its own (smaller, and a diff shows
    which draw changed)."""
    entries = {}

    def placeholder(entry: dict) -> str:
        entries[json.dumps(f"\0entry {len(entries)}")] = json.dumps(entry, sort_keys=True)
        return f"\0entry {len(entries) - 1}"

    shown = dict(manifest, recordings={check: [placeholder(e) for e in tape] for check, tape in manifest["recordings"].items()})
    text = json.dumps(shown, indent=1, sort_keys=True)
    for marker, entry in entries.items():
        text = text.replace(marker, entry, 1)
    return text + "\n"


def release_differences(fresh: Path, committed: Path) -> list[str]:
    """How committed (assignments/<hw>) differs from a fresh release of the same reference: files
    byte for byte, except the recordings, which may differ in floating-point last bits (another
    CPU rounds differently) but nowhere else. Empty when committed is up to date."""
    listed = lambda root: sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)  # noqa: E731
    if listed(fresh) != listed(committed):
        return [f"files: a release has {[str(p) for p in listed(fresh)]}, committed {[str(p) for p in listed(committed)]}"]
    differences = []
    for relative in listed(fresh):
        new, old = (fresh / relative).read_text(), (committed / relative).read_text()
        if relative.name == BUNDLE_MANIFEST:
            differences += [f"{relative}: {found}" for found in _manifest_differences(json.loads(new), json.loads(old))]
        elif new != old:
            differences.append(f"{relative} differs")
    return differences


def _manifest_differences(new: dict, old: dict) -> list[str]:
    if {k: v for k, v in new.items() if k != "recordings"} != {k: v for k, v in old.items() if k != "recordings"}:
        return ["the assignment or the units' signatures differ"]
    if new["recordings"].keys() != old["recordings"].keys():
        return [f"public checks {sorted(new['recordings'])}, committed {sorted(old['recordings'])}"]
    found = {check: recording_difference(tape, old["recordings"][check]) for check, tape in new["recordings"].items()}
    return [f"{check}: {difference}" for check, difference in found.items() if difference]


def make_stub(source: str, filename: str) -> str:
    """source with every solution region replaced by a NotImplementedError naming its function."""
    owners = _function_names_by_line(source, filename)
    lines, out, region_start = source.splitlines(keepends=True), [], None
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN:
            if region_start is not None:
                raise ReleaseError(f"{filename}:{number}: {BEGIN} inside another solution region")
            region_start = number
            indent = line[: len(line) - len(line.lstrip())]
            where = owners.get(number, filename)
            out.append(f'{indent}raise NotImplementedError("{where}: write your solution here")\n')
        elif marker == END:
            if region_start is None:
                raise ReleaseError(f"{filename}:{number}: {END} without a {BEGIN}")
            region_start = None
        elif region_start is None:
            out.append(line)
    if region_start is not None:
        raise ReleaseError(f"{filename}:{region_start}: {BEGIN} is never closed")
    stub = "".join(out)
    parse(stub, filename)  # a stub that does not parse would cost students every point
    return stub


def _function_names_by_line(source: str, filename: str) -> dict[int, str]:
    names: dict[int, str] = {}

    def visit(node, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualified = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno, child.end_lineno + 1):
                        names[line] = qualified
                visit(child, qualified + ".")

    visit(parse(source, filename), "")
    return names


def points_table(assignment: Assignment) -> str:
    points: dict[str, dict[str, float]] = defaultdict(lambda: {"public": 0.0, "hidden": 0.0})
    for spec in assignment.checks:
        points[spec.unit][spec.visibility] += spec.points
    rows = ["| unit | public checks | hidden checks | points |", "|---|---|---|---|"]
    for unit, split in points.items():
        rows.append(f"| `{unit}` | {split['public']:g} | {split['hidden']:g} | {split['public'] + split['hidden']:g} |")
    rows.append(f"| **total** | | | **{assignment.max_score:g}** |")
    return "\n".join(rows)


def record_public(assignment: Assignment, sandbox) -> dict[str, list]:
    """Run each public check against the reference itself, recording what it drew."""
    recordings = {}
    with Worker(sandbox, assignment.reference_dir) as worker:
        for spec in assignment.checks:
            if spec.visibility != "public":
                continue
            tape = RecordingTape()
            verdict = run_check(assignment, spec, worker, PUBLIC_STUDENT, tape=tape)
            if verdict.status != "passed":
                raise ReleaseError(f"public check {spec.id} does not pass on the reference: {verdict.message}")
            recordings[spec.id] = tape.entries
    return recordings
