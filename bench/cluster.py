"""`autograder batch --cluster` on a Dask cluster on this machine.

    .venv/bin/python bench/cluster.py [--students 24] [--slots 1 2 4] [--tasks 300]

1. Grades a class of --students hw1 submissions (bench/batch.py's class) with a
   local batch (--workers 2), then on a cluster of a `dask scheduler` and one
   `autograder worker` of each --slots value, into a fresh gradebook each time;
   prints wall seconds (the command, torch import included; the workers started
   beforehand), submissions per minute, and whether every check of every student
   came out as the local batch graded it.
2. hw2 (timed races) on the example class, locally and on each --slots value:
   whether each race's verdict and score match the local batch's. With more slots
   than cores, two races share a core; a race interleaves the student's and the
   reference's runs, so sharing slows both alike.
3. Dask's own cost per task: --tasks no-op tasks sent as the batch sends them (no
   more out than the cluster has slots, the next sent when one returns), on one
   slot: milliseconds per task, round trip through the scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from batch import make_class  # noqa: E402
from clusters import Cluster  # noqa: E402


def grade(assignment: str, source: Path, db: Path, *extra: str) -> float:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "autograder", "batch", assignment, str(source), "--db", str(db), *extra],
                         cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"batch failed:\n{run.stderr[-3000:]}")
    return time.monotonic() - started


def checks(db: Path) -> dict:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT student, result FROM submissions").fetchall()
    return {student: {c["id"]: (c["status"], c["score"]) for c in json.loads(result)["checks"]} for student, result in rows}


def races(db: Path) -> dict:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT student, result FROM submissions").fetchall()
    return {(student, c["id"]): (c["status"], c["score"], c["message"]) for student, result in rows
            for c in json.loads(result)["checks"] if ".timed" in c["id"]}


def hw2_class(folder: Path) -> Path:
    for student in sorted((ROOT / "examples" / "class").iterdir()):
        if (student / "hw2").is_dir():
            shutil.copytree(student / "hw2", folder / student.name)
    shutil.copytree(ROOT / "reference" / "hw2", folder / "reference", ignore=shutil.ignore_patterns("*checks*", "notebook.py", "README.md"))
    return folder


def overhead(tasks: int) -> None:
    from distributed import Client, as_completed

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.spawn([sys.executable, "-m", "distributed.cli.dask_worker", cluster.address, "--nthreads", "1",
                            "--nworkers", "1", "--no-dashboard"], "plain-worker")
            with Client(cluster.address, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=120)
                arrived = as_completed(loop=client.loop)
                started = time.perf_counter()
                arrived.add(client.submit(len, b"", pure=False))
                sent = 1
                for future in arrived:
                    future.release()
                    if sent < tasks:
                        arrived.add(client.submit(len, b"x" * sent, pure=False))
                        sent += 1
                seconds = time.perf_counter() - started
        finally:
            cluster.stop()
    print(f"Dask's cost per task (no-op, one out at a time, one slot): {1000 * seconds / tasks:.2f} ms over {tasks} tasks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=24)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--tasks", type=int, default=300)
    arguments = parser.parse_args()
    print(f"{os.cpu_count()} cores here")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp = Path(tmp)
        hw1 = make_class(tmp / "hw1", arguments.students)
        hw2 = hw2_class(tmp / "hw2")
        seconds = grade("hw1", hw1, tmp / "local.sqlite", "--workers", "2")
        grade("hw2", hw2, tmp / "local-hw2.sqlite", "--workers", "2")
        expected, expected_races = checks(tmp / "local.sqlite"), races(tmp / "local-hw2.sqlite")
        print(f"hw1, {arguments.students} submissions, local batch, 2 graders: {seconds:.1f} s wall, "
              f"{60 * arguments.students / seconds:.1f} submissions/min")
        for slots in arguments.slots:
            folder = tmp / f"cluster-{slots}"
            folder.mkdir()
            cluster = Cluster(folder)
            try:
                cluster.add_workers(slots, "bench")
                db = tmp / f"cluster-{slots}.sqlite"
                seconds = grade("hw1", hw1, db, "--cluster", cluster.address)
                same = checks(db) == expected
                print(f"hw1, {arguments.students} submissions, cluster, {slots} slot(s): {seconds:.1f} s wall, "
                      f"{60 * arguments.students / seconds:.1f} submissions/min, every check as the local batch: {same}")
                db2 = tmp / f"cluster-{slots}-hw2.sqlite"
                seconds = grade("hw2", hw2, db2, "--cluster", cluster.address)
                got = races(db2)
                differ = [key for key in expected_races if expected_races[key][:2] != got.get(key, (None, None))[:2]]
                print(f"hw2, {len({s for s, _ in got})} submissions, cluster, {slots} slot(s): {seconds:.1f} s wall; "
                      f"{len(got)} race verdicts, {len(differ)} differ from the local batch's {differ[:4]}")
            finally:
                cluster.stop()
    overhead(arguments.tasks)


if __name__ == "__main__":
    main()
