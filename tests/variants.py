"""What a single-bug variant of a reference solution is (hw1_variants.py, hw2_variants.py list them),
and submissions built from others."""

import shutil
from dataclasses import dataclass
from pathlib import Path

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"

# Appended to the pixel-loop solution: its own helper module fools every clock first.
CLOCK_TRICKS_HOOK = """

import clock_tricks  # fools the clocks at import, and again before each timed unit runs

conv2d = clock_tricks.fooling(conv2d)
Conv2d.forward = clock_tricks.fooling(Conv2d.forward)
Conv2d.backward = clock_tricks.fooling(Conv2d.backward)
"""


@dataclass(frozen=True)
class Variant:
    name: str  # short id, e.g. "sigmoid_wrong_derivative"
    file: str  # e.g. "activations.py"
    old: str  # exact text occurring exactly once in reference/<hw>/<file>
    new: str  # replacement text (the bug)
    broken: frozenset[str]  # the units that may lose points, e.g. frozenset({"activations.Sigmoid"})
    why: str  # one line: what a correct grader must notice
    loses: frozenset[str] = frozenset()  # checks that must lose points (a gap once let them keep them)
    says: tuple[tuple[str, str], ...] = ()  # (check id, text its message must contain): the right diagnosis


def variant(name, file, old, new, unit, why, loses=(), says=()):
    return Variant(name, file, old, new, frozenset({unit}), why, frozenset(loses), tuple(says))


def lost(result) -> dict[str, float]:
    """check id -> points lost."""
    return {c.id: c.max_score - c.score for c in result.checks if c.score < c.max_score}


def unit_of(check_id: str) -> str:
    return ".".join(check_id.split(".")[:2])


def loops_with_clock_tricks(directory: Path) -> Path:
    """The correct pixel-loop hw2 solution that also patches every clock it can reach in its process."""
    directory.mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "clock_tricks.py", directory / "clock_tricks.py")
    loops = (SUBMISSIONS / "hw2_loops" / "convolution.py").read_text()
    (directory / "convolution.py").write_text(loops + CLOCK_TRICKS_HOOK)
    return directory


def apply(variant: Variant, directory: Path) -> Path:
    """Put variant's bug into directory/<its file>, a copy of the reference's."""
    path = directory / variant.file
    source = path.read_text()
    assert source.count(variant.old) == 1, f"{variant.name}: the text to replace must occur exactly once"
    path.write_text(source.replace(variant.old, variant.new))
    return directory


def assert_loses_only_its_unit(result, variant: Variant) -> None:
    """The grading of variant's submission noticed the bug, charged only the units it breaks, lost the
    checks it must lose, never blamed itself, and said what its diagnosis must say."""
    lost_points = lost(result)
    assert lost_points, f"{variant.name} was not detected: {variant.why}"
    outside = {check: points for check, points in lost_points.items() if unit_of(check) not in variant.broken}
    assert not outside, f"{variant.name} also cost {outside}"
    assert not any("internal error" in c.message for c in result.checks)
    kept = variant.loses - set(lost_points)
    assert not kept, f"{variant.name} kept the points of {sorted(kept)}: {variant.why}"
    messages = {c.id: c.message for c in result.checks}
    for check_id, text in variant.says:
        assert text in messages[check_id], f"{check_id} must say {text!r}, said: {messages[check_id]}"
