"""Benchmark: does a regrade give the same score, idle and on a loaded host?

Grades each submission with `autograder grade --format json` (a fresh
process each time, as a regrade is) --runs times on an idle host and --runs
times while --busy spinning processes per core load every core, then prints,
per submission, how many distinct results came back (the score of every
check, and the total): 1 is the only right answer. A verdict that differs
between runs is listed with its statuses.

Run: .venv/bin/python bench/same_score.py [--runs 10] [--busy 4] [--sandbox namespace] [--only hw2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hw1_variants import VARIANTS  # noqa: E402
from variants import apply  # noqa: E402

HW1_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


def submissions(folder: Path) -> dict[str, tuple[str, Path]]:
    """name -> (homework, folder): the references, a single-bug hw1 and hw2 solutions in other styles."""
    chosen = {
        "hw1 reference": ("hw1", ROOT / "reference" / "hw1"),
        "hw2 reference": ("hw2", ROOT / "reference" / "hw2"),
    }
    for style in ("hw2_numpy_add_at", "hw2_offsets", "hw2_loops"):
        if (ROOT / "tests" / "submissions" / style).is_dir():
            chosen[style] = ("hw2", ROOT / "tests" / "submissions" / style)
    variant = VARIANTS[0]
    buggy = folder / "hw1-bug"
    buggy.mkdir()
    for name in HW1_FILES:
        (buggy / name).write_bytes((ROOT / "reference" / "hw1" / name).read_bytes())
    chosen[f"hw1 with {variant.name}"] = ("hw1", apply(variant, buggy))
    return chosen


def grade(homework: str, folder: Path, sandbox: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", homework, str(folder), "--student", "regrade",
         "--format", "json", "--sandbox", sandbox],
        cwd=ROOT, capture_output=True, text=True,
    )
    if run.returncode != 0:
        return f"exit {run.returncode}: {run.stderr.strip()[-300:]}"
    result = json.loads(run.stdout)
    return json.dumps({"score": result["score"], "checks": {c["id"]: c["status"] for c in result["checks"]}}, sort_keys=True)


def spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="regrades per condition (idle, loaded)")
    parser.add_argument("--busy", type=int, default=4, help="spinning processes per core while loaded")
    parser.add_argument("--sandbox", default="namespace")
    parser.add_argument("--only", default="", help="comma-separated parts of the names of the submissions to grade")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-same-score-") as tmp:
        chosen = submissions(Path(tmp))
        if options.only:
            parts = options.only.split(",")
            chosen = {name: value for name, value in chosen.items() if any(part in name for part in parts)}
        outcomes: dict[str, list[tuple[str, str]]] = {name: [] for name in chosen}
        for condition in ("idle", "loaded"):
            spinners = []
            if condition == "loaded":
                spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(options.busy * os.cpu_count())]
                for process in spinners:
                    process.start()
            started = time.monotonic()
            try:
                for _ in range(options.runs):
                    for name, (homework, folder) in chosen.items():
                        outcomes[name].append((condition, grade(homework, folder, options.sandbox)))
                        result = outcomes[name][-1][1]
                        shown = json.loads(result)["score"] if result.startswith("{") else result
                        print(f"  {condition} {name}: {shown}", flush=True)
            finally:
                for process in spinners:
                    process.kill()
            print(f"{condition}: {options.runs} regrades of {len(chosen)} submissions in {time.monotonic() - started:.0f} s",
                  flush=True)
        for name, runs in outcomes.items():
            distinct = Counter(result for _, result in runs)
            scores = sorted({json.loads(r)["score"] if r.startswith("{") else r for r in distinct})
            fingerprints = sorted(hashlib.sha256(result.encode()).hexdigest()[:12] for result in distinct)
            print(f"{name}: {len(distinct)} distinct result(s) over {len(runs)} regrades; score(s) {scores}; "
                  f"result fingerprint(s) {fingerprints}")
            if len(distinct) > 1:
                statuses = [json.loads(r)["checks"] for r in distinct if r.startswith("{")]
                flipped = sorted({check for s in statuses for check in s if len({t.get(check) for t in statuses}) > 1})
                for check in flipped:
                    seen = Counter((condition, json.loads(r)["checks"].get(check)) for condition, r in runs if r.startswith("{"))
                    print(f"    {check}: {dict(seen)}")


if __name__ == "__main__":
    main()
