"""`course.toml`: the course-wide settings grading follows.

    [grading]
    cuda_absent = "cpu"   # what a CUDA check scores on a host without a CUDA device

A CUDA check (`<id>.cuda`, the twin of the CPU check `<id>`) is skipped where
the grading host has no CUDA device; `cuda_absent` says what it scores then:

* "cpu": what its CPU twin scored (the default: a host without a GPU grades
  the same code the same way, on CPU);
* "zero": nothing;
* "exclude": it is left out of the maximum as well.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

COURSE_FILE = "course.toml"
CUDA_ABSENT = ("cpu", "zero", "exclude")


class CourseError(Exception):
    """course.toml is unreadable or says something this version does not understand."""


@dataclass(frozen=True)
class Course:
    cuda_absent: str = "cpu"


def load_course(root: Path) -> Course:
    """The settings in root/course.toml; the defaults when there is no such file."""
    path = Path(root) / COURSE_FILE
    if not path.is_file():
        return Course()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CourseError(f"{path} is not valid TOML: {exc}") from None
    grading = data.get("grading", {})
    if not isinstance(grading, dict):
        raise CourseError(f"{path}: [grading] must be a table")
    unknown = set(grading) - {"cuda_absent"}
    if unknown:
        raise CourseError(f"{path}: unknown setting(s) in [grading]: {', '.join(sorted(unknown))}; known: cuda_absent")
    cuda_absent = grading.get("cuda_absent", Course.cuda_absent)
    if cuda_absent not in CUDA_ABSENT:
        choices = ", ".join(f'"{c}"' for c in CUDA_ABSENT)
        raise CourseError(f"{path}: [grading] cuda_absent = {cuda_absent!r}; it must be one of {choices}")
    return Course(cuda_absent=cuda_absent)
