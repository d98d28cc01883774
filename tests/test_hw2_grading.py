"""hw2 graded end to end through real workers: the reference, the stubs,
vectorized solutions in other styles, a correct solution with Python loops over
output pixels (with and without patching every clock it can reach), and
single-bug variants.

The solutions whose timed checks are under test are graded one at a time, when
a test first asks for them, so that only their own race runs in this process;
the rest concurrently. The reference's race and a pixel loop's run in `make
test`; the other styles' (a race each, 10 s or more) in `make test-slow`.
"""

import dataclasses
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from autograder.engine.assignment import load_reference
from autograder.engine.course import Course, CourseError, load_course
from autograder.engine.results import CheckResult
from autograder.engine.runner import cuda_skipped, grade
from sandboxing import sandbox as sandbox_for_tests
from hw2_variants import VARIANTS
from variants import apply, assert_loses_only_its_unit, loops_with_clock_tricks, lost

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw2"
SUBMISSIONS = ROOT / "tests" / "submissions"
CUDA = torch.cuda.is_available()

RACED = {
    "reference": REFERENCE,
    "alternative": SUBMISSIONS / "hw2_alternative",
    "offsets": SUBMISSIONS / "hw2_offsets",
    "numpy_add_at": SUBMISSIONS / "hw2_numpy_add_at",
    "loops": SUBMISSIONS / "hw2_loops",
    "numpy_loops": SUBMISSIONS / "hw2_numpy_loops",
}


def patched(directory: Path, variant) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(REFERENCE / variant.file, directory / variant.file)
    return apply(variant, directory)


@pytest.fixture(scope="session")
def assignment():
    return load_reference("hw2", REFERENCE)


@pytest.fixture(scope="session")
def graded(assignment, tmp_path_factory):
    base = tmp_path_factory.mktemp("hw2")
    broken = base / "syntax_error"
    broken.mkdir()
    (broken / "convolution.py").write_text("import torch\ndef conv2d(x, weight:\n    pass\n")
    # Single bugs break values, which every check sees; the races (timed checks) are under test with `raced`.
    untimed = dataclasses.replace(assignment, checks=[spec for spec in assignment.checks if not spec.timed])
    others = {"stubs": (ROOT / "assignments" / "hw2", assignment), "syntax_error": (broken, assignment)}
    others.update({variant.name: (patched(base / variant.name, variant), untimed) for variant in VARIANTS})
    sandbox = sandbox_for_tests(default="process")
    with ThreadPoolExecutor(max_workers=2) as pool:
        graded_all = pool.map(lambda job: grade(job[1], job[0], sandbox, "alice", reveal_hidden=True), others.values())
        return dict(zip(others, graded_all))


@pytest.fixture(scope="session")
def raced(assignment, tmp_path_factory):
    """raced(name): the solution RACED names (or a pixel loop patching every clock) graded, once."""
    results = {}
    sandbox = sandbox_for_tests(default="process")

    def get(name: str):
        if name not in results:
            clockpatch = name == "loops_clockpatch"
            directory = loops_with_clock_tricks(tmp_path_factory.mktemp("hw2") / name) if clockpatch else RACED[name]
            results[name] = grade(assignment, directory, sandbox, "alice", reveal_hidden=True)
        return results[name]

    return get


def slow(*names):
    return [pytest.param(name, marks=pytest.mark.slow) for name in names]


def timed_ids(assignment) -> set[str]:
    return {spec.id for spec in assignment.checks if spec.timed}


def failures(result) -> dict[str, str]:
    return {c.id: c.message for c in result.checks if c.score < c.max_score}


def test_points_follow_the_course_split(assignment):
    assert sum(spec.points for spec in assignment.checks) == 10
    assert {spec.module for spec in assignment.checks} == {"convolution"}
    ids = {spec.id for spec in assignment.checks}
    assert {"convolution.conv2d.timed", "convolution.Conv2d.forward.timed", "convolution.Conv2d.backward.timed"} <= ids
    assert all(f"{i}.cuda" in ids for i in ("convolution.conv2d.timed", "convolution.Conv2d.backward.timed"))
    assert all(spec.visibility == "hidden" for spec in assignment.checks if spec.timed or spec.device == "cuda")


@pytest.mark.parametrize("name", ["reference", *slow("alternative", "offsets", "numpy_add_at")])
def test_vectorized_solutions_get_full_marks(raced, name):
    result = raced(name)
    assert (result.score, result.max_score) == (10.0, 10.0), failures(result)
    for check in result.checks:
        if check.id.endswith(".cuda") and not CUDA:
            assert check.status == "skipped" and "no CUDA device" in check.message, check
        else:
            assert check.status == "passed", check


def test_stubs_get_zero_without_crashing(graded):
    result = graded["stubs"]
    assert result.score == 0 and result.max_score == 10
    assert not any("internal error" in c.message for c in result.checks)
    assert any("NotImplementedError" in c.message and "conv2d" in c.message for c in result.checks)


@pytest.mark.parametrize("name", ["loops", *slow("numpy_loops")])
def test_pixel_loops_lose_only_the_timed_checks(raced, assignment, name):
    result = raced(name)
    assert set(lost(result)) == timed_ids(assignment), failures(result)
    for check in result.checks:
        if check.id in timed_ids(assignment) and not check.id.endswith(".cuda"):
            # the ratio of the times measured, or the limit a request was stopped at and the reference's time
            assert check.status == "failed" and "is too slow: " in check.message, check
            assert "times as long" in check.message or "was stopped" in check.message, check


@pytest.mark.slow
def test_patching_every_clock_changes_no_verdict(raced):
    assert set(lost(raced("loops_clockpatch"))) == set(lost(raced("loops")))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_single_bug_loses_only_its_unit(graded, variant):
    assert_loses_only_its_unit(graded[variant.name], variant)


def test_forbidden_conv2d_is_named(graded):
    checks = {c.id: c for c in graded["conv2d_forbidden_F_conv2d"].checks}
    assert "torch.nn.functional.conv2d" in checks["convolution.conv2d.output"].message


def test_a_file_that_does_not_parse_costs_everything_with_one_clear_message(graded):
    result = graded["syntax_error"]
    assert result.score == 0
    assert all("SyntaxError" in c.message for c in result.checks if c.status != "skipped")


def test_cuda_checks_without_cuda_follow_the_course_setting():
    spec = next(s for s in load_reference("hw2", REFERENCE).checks if s.id == "convolution.conv2d.timed.cuda")
    passed = CheckResult("convolution.conv2d.timed", 0.25, 0.25, "passed", "", "hidden")
    failed = CheckResult("convolution.conv2d.timed", 0.0, 0.25, "failed", "too slow", "hidden")
    scored = {
        policy: (cuda_skipped(spec, passed, Course(policy)), cuda_skipped(spec, failed, Course(policy)))
        for policy in ("cpu", "zero", "exclude")
    }
    assert [(c.score, c.max_score) for c in scored["cpu"]] == [(0.25, 0.25), (0.0, 0.25)]
    assert [(c.score, c.max_score) for c in scored["zero"]] == [(0.0, 0.25), (0.0, 0.25)]
    assert [(c.score, c.max_score) for c in scored["exclude"]] == [(0.0, 0.0), (0.0, 0.0)]
    assert all(c.status == "skipped" and "no CUDA device" in c.message for pair in scored.values() for c in pair)
    assert "scored as its CPU twin convolution.conv2d.timed" in scored["cpu"][0].message


def test_course_settings_are_validated(tmp_path):
    assert load_course(tmp_path) == Course("cpu")  # no course.toml: the defaults
    assert load_course(ROOT).cuda_absent in ("cpu", "zero", "exclude")
    (tmp_path / "course.toml").write_text('[grading]\ncuda_absent = "half"\n')
    with pytest.raises(CourseError, match='must be one of "cpu", "zero", "exclude"'):
        load_course(tmp_path)
    (tmp_path / "course.toml").write_text("[grading]\ncuda_missing = 'cpu'\n")
    with pytest.raises(CourseError, match="unknown setting"):
        load_course(tmp_path)
    (tmp_path / "course.toml").write_text("[grading\n")
    with pytest.raises(CourseError, match="not valid TOML"):
        load_course(tmp_path)


@pytest.mark.skipif(not CUDA, reason="no CUDA device on this host: the CUDA twins are skipped (tested above)")
def test_cuda_twins_run_on_cuda(raced):
    for name in ("reference", "alternative"):
        cuda = [c for c in raced(name).checks if c.id.endswith(".cuda")]
        assert cuda and all(c.status == "passed" for c in cuda), [(c.id, c.message) for c in cuda]
    loops = {c.id: c for c in raced("loops").checks}
    assert loops["convolution.conv2d.timed.cuda"].status == "failed"

