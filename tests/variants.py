"""What a single-bug variant of a reference solution is (hw1_variants.py, hw2_variants.py list them)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str  # short id, e.g. "sigmoid_wrong_derivative"
    file: str  # e.g. "activations.py"
    old: str  # exact text occurring exactly once in reference/<hw>/<file>
    new: str  # replacement text (the bug)
    broken: frozenset[str]  # the units that may lose points, e.g. frozenset({"activations.Sigmoid"})
    why: str  # one line: what a correct grader must notice


def variant(name, file, old, new, unit, why):
    return Variant(name, file, old, new, frozenset({unit}), why)


def lost(result) -> dict[str, float]:
    """check id -> points lost."""
    return {c.id: c.max_score - c.score for c in result.checks if c.score < c.max_score}


def unit_of(check_id: str) -> str:
    return ".".join(check_id.split(".")[:2])
