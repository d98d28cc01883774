"""The gradebook: one SQLite file holding every graded submission and every
imported score.

Each write is one transaction (WAL mode, synchronous=FULL): a result is either
wholly in the file or not at all, whenever the writer is killed. A student has
at most one row per assignment (the primary key), so a regrade replaces it and
a resumed batch can never duplicate anyone.

Tables:
    submissions  one row per (assignment, student): the content hash and checks
                 version it was graded with (a rerun skips it while both hold),
                 the score, and the whole result as JSON
    checks       one row per check of each submission, for queries by check
    ungraded     submissions that could not be graded (their grader died, twice) and why:
                 such a student has no score for the assignment (missing, never a silent 0),
                 and a rerun skips the same submission while the checks version holds
    imported     points of components graded elsewhere (the exam), per student
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from autograder.engine.course import Course, exact
from autograder.engine.grades import Earned, StudentGrades, standing
from autograder.engine.results import SubmissionResult

DEFAULT_PATH = "gradebook.sqlite"
SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    checks_version TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    result TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (assignment, student)
);
CREATE TABLE IF NOT EXISTS checks (
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    check_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    visibility TEXT NOT NULL,
    PRIMARY KEY (assignment, student, check_id)
);
CREATE TABLE IF NOT EXISTS ungraded (
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    checks_version TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (assignment, student)
);
CREATE TABLE IF NOT EXISTS imported (
    component TEXT NOT NULL,
    student TEXT NOT NULL,
    points TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (component, student)
);
"""


class GradebookError(Exception):
    """The gradebook file cannot be used (not SQLite, another program's database, a newer schema)."""


@dataclass(frozen=True)
class Stored:
    """What the gradebook knows of one submission."""

    result: SubmissionResult
    content_hash: str
    checks_version: str
    graded_at: str
    seconds: float


class Gradebook:
    def __init__(self, path: Path | str = DEFAULT_PATH):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)  # idempotent: CREATE ... IF NOT EXISTS
            with self.transaction():
                self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise GradebookError(f"{self.path} is not a usable gradebook ({exc}); pass --db with another file") from None

    def _check_schema(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise GradebookError(f"{self.path} has gradebook schema {row[0]}; this autograder reads schema {SCHEMA_VERSION}")

    def transaction(self):
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- graded submissions --------------------------------------------------

    def is_current(self, assignment: str, student: str, content_hash: str, checks_version: str) -> bool:
        """Whether this exact submission was already graded with these exact checks."""
        row = self.db.execute(
            "SELECT 1 FROM submissions WHERE assignment = ? AND student = ? AND content_hash = ? AND checks_version = ?",
            (assignment, student, content_hash, checks_version),
        ).fetchone()
        return row is not None

    def record(self, result: SubmissionResult, content_hash: str, checks_version: str, seconds: float) -> None:
        """Store result, replacing the student's earlier one for this assignment, in one transaction."""
        key = (result.assignment, result.student)
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, content_hash, checks_version, result.score, result.max_score,
                 json.dumps(result.to_dict()), _now(), seconds),
            )
            self.db.execute("DELETE FROM checks WHERE assignment = ? AND student = ?", key)
            self.db.executemany(
                "INSERT INTO checks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*key, c.id, i, c.status, c.score, c.max_score, c.visibility) for i, c in enumerate(result.checks)],
            )
            self.db.execute("DELETE FROM ungraded WHERE assignment = ? AND student = ?", key)

    def record_ungraded(self, assignment: str, student: str, content_hash: str, checks_version: str, reason: str) -> None:
        """Store that this submission could not be graded, and why; an earlier result of the student's is
        removed with it (it graded other content, and must not stand in for this one)."""
        key = (assignment, student)
        with self.transaction():
            self.db.execute("DELETE FROM submissions WHERE assignment = ? AND student = ?", key)
            self.db.execute("DELETE FROM checks WHERE assignment = ? AND student = ?", key)
            self.db.execute("INSERT OR REPLACE INTO ungraded VALUES (?, ?, ?, ?, ?, ?)",
                            (*key, content_hash, checks_version, reason, _now()))

    def ungraded_reason(self, assignment: str, student: str, content_hash: str, checks_version: str) -> str | None:
        """Why this exact submission could not be graded with these exact checks; None if it was not recorded so."""
        row = self.db.execute(
            "SELECT reason FROM ungraded WHERE assignment = ? AND student = ? AND content_hash = ? AND checks_version = ?",
            (assignment, student, content_hash, checks_version),
        ).fetchone()
        return row[0] if row else None

    def submissions(self, assignment: str | None = None) -> list[Stored]:
        query = "SELECT result, content_hash, checks_version, graded_at, seconds FROM submissions"
        rows = self.db.execute(query + " WHERE assignment = ? ORDER BY student" if assignment else query + " ORDER BY assignment, student",
                               (assignment,) if assignment else ())
        return [Stored(SubmissionResult.from_dict(json.loads(r[0])), *r[1:]) for r in rows]

    def failures_by_check(self, assignment: str) -> list[tuple[str, int, int]]:
        """(check id, students who did not pass it, students graded on it), in check order. A check skipped for a
        student (a .cuda twin on a host without CUDA) did not run for them: it counts in neither number."""
        return self.db.execute(
            "SELECT check_id, SUM(status != 'skipped' AND (status != 'passed' OR score < max_score)), SUM(status != 'skipped') "
            "FROM checks WHERE assignment = ? GROUP BY check_id ORDER BY MIN(position), check_id",
            (assignment,),
        ).fetchall()

    # -- imported points -----------------------------------------------------

    def import_points(self, component: str, points: dict[str, Decimal], source: str) -> None:
        """Replace component's imported points for these students, all in one transaction."""
        now = _now()
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO imported VALUES (?, ?, ?, ?, ?)",
                [(component, student, str(value), source, now) for student, value in points.items()],
            )

    def imported(self, component: str) -> dict[str, Decimal]:
        rows = self.db.execute("SELECT student, points FROM imported WHERE component = ?", (component,))
        return {student: Decimal(points) for student, points in rows}

    # -- the course view -----------------------------------------------------

    def students(self) -> list[str]:
        rows = self.db.execute("SELECT student FROM submissions UNION SELECT student FROM imported "
                               "UNION SELECT student FROM ungraded ORDER BY student")
        return [row[0] for row in rows]

    def class_grades(self, course: Course, not_assigned: frozenset[str] = frozenset()) -> list[StudentGrades]:
        """Every student's standing on the course scale, sorted by student id; late penalties are
        applied here, from the stored submission times, so a changed policy needs no regrade.
        not_assigned: the components not released yet (grades.unassigned())."""
        earned: dict[str, dict[str, Earned]] = {student: {} for student in self.students()}
        why_missing: dict[str, dict[str, str]] = {}
        for component in course.components:
            if component.imported:
                for student, points in self.imported(component.id).items():
                    earned[student][component.id] = Earned(points, None)
                continue
            rows = self.db.execute(
                "SELECT student, score, max_score, json_extract(result, '$.notes'), json_extract(result, '$.submitted_at'), "
                "json_extract(result, '$.submitted_at_source') FROM submissions WHERE assignment = ?",
                (component.source,),
            )
            for student, score, max_score, notes, submitted_at, source in rows:
                note = "; ".join(json.loads(notes or "[]"))
                # Results stored before submission times were kept have none: unknown.
                earned[student][component.id] = Earned(exact(score), exact(max_score), note, submitted_at or "", source or "")
            # Points imported for an assignment's component (graded elsewhere) count when nothing was graded here.
            for student, points in self.imported(component.id).items():
                earned[student].setdefault(component.id, Earned(points, None))
            # A submission that could not be graded stays missing, and says why.
            for student, reason in self.db.execute("SELECT student, reason FROM ungraded WHERE assignment = ?", (component.source,)):
                if component.id not in earned[student]:
                    why_missing.setdefault(student, {})[component.id] = f"not graded: {reason}"
        return [standing(course, student, earned[student], why_missing.get(student), not_assigned)
                for student in sorted(earned)]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
