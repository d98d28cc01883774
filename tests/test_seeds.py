"""Hidden inputs the student's process cannot predict, while a regrade repeats them.

A probe submission tries every way it has to foresee the input a check sends
it: the seeds of its own process (torch, numpy, random), and the public
formula of a seed from (student id, assignment, check id), for its own id read
from its folder name. A public check, whose seed is that public formula, is
the control: there the probe must succeed, so a probe that cannot guess at
all proves nothing.
"""

import hashlib
from pathlib import Path

import pytest
import torch

from autograder.checks.seeds import SECRET_ENV, SECRET_FILE, check_seed, course_secret, process_seed
from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from sandboxing import sandbox

CHECKS = '''
from autograder.checks import CheckList

checks = CheckList()


@checks.{visibility}("probe.guess.{visibility}", points=1)
def _(t):
    x = t.randn(16)
    guessed = t.student.probe.guess(x, "{visibility}")
    t.expect(guessed == [], f"the student's process foresaw this check's input: {{guessed}}")
'''

PROBE = '''
import hashlib
import os
import random

import numpy
import torch

STUDENT = os.path.basename(os.path.dirname(os.path.abspath(__file__)))


def draw(seed, shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def public_formula(student, check_id):
    digest = hashlib.sha256(f"{student}\\0probehw\\0{check_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def guess(x, visibility):
    shape, found = x.shape, []
    candidates = {
        "the process's torch stream": torch.randn(shape, dtype=torch.float64),
        "torch.initial_seed()": draw(torch.initial_seed(), shape),
        "numpy's seed": draw(int(numpy.random.get_state()[1][0]), shape),
        "random's stream": draw(random.getrandbits(63), shape),
    }
    for student in (STUDENT, "public"):
        candidates[f"the public formula for {student}"] = draw(public_formula(student, f"probe.guess.{visibility}"), shape)
    return [name for name, candidate in candidates.items() if torch.allclose(candidate, x)]
'''

REFERENCE_PROBE = "def guess(x, visibility):\n    return []\n"


@pytest.fixture()
def course(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    reference = tmp_path / "reference" / "probehw"
    reference.mkdir(parents=True)
    (reference / "public_checks.py").write_text(CHECKS.format(visibility="public"))
    (reference / "hidden_checks.py").write_text(CHECKS.format(visibility="hidden"))
    (reference / "probe.py").write_text(REFERENCE_PROBE)
    submission = tmp_path / "s123"
    submission.mkdir()
    (submission / "probe.py").write_text(PROBE)
    return reference, submission


def scores(reference: Path, submission: Path) -> dict:
    result = grade(load_reference("probehw", reference), submission, sandbox(), "s123")
    return {check.id: (check.status, check.message) for check in result.checks}


def test_the_student_process_cannot_foresee_hidden_inputs_but_foresees_public_ones(course):
    reference, submission = course
    graded = scores(reference, submission)
    assert graded["probe.guess.hidden"][0] == "passed", graded
    # The control: a public check's inputs are published anyway, and the probe does find them.
    status, message = graded["probe.guess.public"]
    assert status == "failed" and "the public formula for s123" not in message and "public formula for public" in message


def test_a_regrade_draws_the_same_hidden_inputs_and_the_secret_is_kept(course):
    reference, submission = course
    secret_path = reference.parent / SECRET_FILE
    assert not secret_path.exists()
    assignment = load_reference("probehw", reference)
    assert secret_path.stat().st_mode & 0o777 == 0o600  # made on first use, for the instructor only
    assert course_secret(reference.parent) == assignment.secret
    seed = check_seed("s123", "probehw", "probe.guess.hidden", assignment.secret)
    assert seed == check_seed("s123", "probehw", "probe.guess.hidden", assignment.secret)
    assert seed != check_seed("s123", "probehw", "probe.guess.hidden", b"another course")
    assert seed != check_seed("s124", "probehw", "probe.guess.hidden", assignment.secret)
    public = hashlib.sha256(b"s123\0probehw\0probe.guess.hidden").digest()
    assert seed != int.from_bytes(public[:8], "big") >> 1


def test_the_process_seed_is_not_the_input_seed():
    seed = check_seed("s123", "hw1", "activations.Sigmoid.forward", b"secret")
    assert process_seed(seed) != seed
    first, second = (torch.randn(8, generator=torch.Generator().manual_seed(s)) for s in (seed, process_seed(seed)))
    assert not torch.allclose(first, second)


def test_the_environment_overrides_the_secret_file(course, monkeypatch):
    reference, _ = course
    monkeypatch.setenv(SECRET_ENV, "from the environment")
    assert load_reference("probehw", reference).secret == b"from the environment"
    assert not (reference.parent / SECRET_FILE).exists()
