"""The one result model every rendering reads."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

STATUSES = ("passed", "failed", "error", "timeout", "skipped")


@dataclass
class CheckResult:
    id: str
    score: float
    max_score: float
    status: str
    message: str
    visibility: str

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")


@dataclass
class SubmissionResult:
    assignment: str
    student: str
    checks: list[CheckResult] = field(default_factory=list)
    sandbox: str = ""  # how the student's code was isolated while graded
    notes: list[str] = field(default_factory=list)  # what was wrong with the submission itself (e.g. a file left out)
    submitted_at: str = ""  # when it was handed in, ISO 8601 UTC ("2026-11-23T09:30:00Z"); "" when unknown
    submitted_at_source: str = ""  # how that is known: "manifest" (autograder submit) or "newest file"

    @property
    def score(self) -> float:
        return _total(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return _total(c.max_score for c in self.checks)

    def to_dict(self) -> dict:
        return {
            "assignment": self.assignment,
            "student": self.student,
            "score": self.score,
            "max_score": self.max_score,
            "sandbox": self.sandbox,
            "notes": self.notes,
            "submitted_at": self.submitted_at,
            "submitted_at_source": self.submitted_at_source,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        checks = [CheckResult(**{k: c[k] for k in CHECK_FIELDS}) for c in data["checks"]]
        return cls(data["assignment"], data["student"], checks, data.get("sandbox", ""), list(data.get("notes", [])),
                   data.get("submitted_at", ""), data.get("submitted_at_source", ""))


CHECK_FIELDS = ("id", "score", "max_score", "status", "message", "visibility")


def _total(points) -> float:
    # Points are sums of quarters and the like; fsum keeps them exact, round hides 1e-16 dust.
    return round(math.fsum(points), 9)
