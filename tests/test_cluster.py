"""`autograder batch --cluster`: a class graded on a real Dask cluster on 127.0.0.1 (a
`dask scheduler` and `autograder worker` processes), as an instructor runs it, gets the
gradebook a local batch gets; a worker killed mid-run, a submission that kills its
worker every time and a scheduler that goes away cost what they must and no more.

Real processes throughout; make test-cluster runs them (each starts graders that
import torch). The course is test_batch.py's small one unless a test says otherwise."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

pytest.importorskip("distributed", reason="Dask's distributed is not installed: pip install 'dl-autograder[cluster]'")

from clusters import START_SECONDS, Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
RIGHT = "def double(x):\n    return x + x\n"
WRONG = "def double(x):\n    return 3 * x\n"
SLOW_RIGHT = f"import time\ntime.sleep(1.5)\n\n{RIGHT}"  # still being graded when a test kills something
# In the process sandbox student code can signal its grader: this one kills the Dask worker grading it
# (the first ancestor that multiprocessing spawned), every time it is imported.
KILLS_ITS_WORKER = '''import os, signal
pid = os.getpid()
while pid > 1:
    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    if b"spawn_main" in open(f"/proc/{pid}/cmdline", "rb").read():
        os.kill(pid, signal.SIGKILL)
        break
''' + RIGHT


@pytest.fixture
def cluster(tmp_path):
    started = []

    def start(**options) -> Cluster:
        folder = tmp_path / f"cluster{len(started)}"
        folder.mkdir()
        started.append(Cluster(folder, **options))
        return started[-1]

    yield start
    for each in started:
        each.stop()


def make_class(folder: Path, students: dict[str, str]) -> Path:
    for student, source in students.items():
        (folder / student).mkdir(parents=True, exist_ok=True)
        (folder / student / "scale.py").write_text(source)
    return folder


def batch_command(assignment: str, source: Path, db: Path, *extra, root: Path = TINY) -> list[str]:
    return [sys.executable, "-m", "autograder", "batch", assignment, str(source), "--db", str(db), "--root", str(root), *extra]


def run(command, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "300"})


def results(db: Path, assignment: str = "tiny") -> dict[str, dict]:
    """student -> {"score", "checks": {id: (status, score, message)}} as the gradebook holds them; no one twice."""
    with sqlite3.connect(db) as connection:
        found = connection.execute("SELECT student, result FROM submissions WHERE assignment = ?", (assignment,)).fetchall()
    students = [student for student, _ in found]
    assert len(students) == len(set(students)), f"a student recorded twice: {students}"
    graded = {}
    for student, stored in found:
        result = json.loads(stored)
        graded[student] = {"score": result["score"],
                           "checks": {c["id"]: (c["status"], c["score"], c["message"]) for c in result["checks"]}}
    return graded


def ungraded(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT student, reason FROM ungraded"))


def test_a_class_on_two_workers_gets_the_gradebook_a_local_batch_gets_check_by_check(tmp_path, cluster):
    """hw1, the example class and the reference: every check of every student as a local batch grades it."""
    source = tmp_path / "class"
    for student in sorted((ROOT / "examples" / "class").iterdir()):
        if (student / "hw1").is_dir():
            shutil.copytree(student / "hw1", source / student.name)
    shutil.copytree(ROOT / "reference" / "hw1", source / "reference", ignore=shutil.ignore_patterns("*checks*", "notebook.py"))
    local = run(batch_command("hw1", source, tmp_path / "local.sqlite", "--workers", "2", root=ROOT))
    assert local.returncode == 0, local.stderr
    on_cluster = cluster()
    on_cluster.add_workers(2, "host-a")
    graded = run(batch_command("hw1", source, tmp_path / "cluster.sqlite", "--cluster", on_cluster.address, root=ROOT))
    assert graded.returncode == 0, graded.stderr
    expected = results(tmp_path / "local.sqlite", "hw1")
    assert len(expected) >= 5
    assert results(tmp_path / "cluster.sqlite", "hw1") == expected
    assert "graded per worker" in graded.stderr and "host-a-0" in graded.stderr and "host-a-1" in graded.stderr, graded.stderr
    # The same checks version both ways: the cluster's gradebook is current for a local rerun, and the reverse.
    again = run(batch_command("hw1", source, tmp_path / "cluster.sqlite", "--workers", "1", root=ROOT))
    assert again.returncode == 0 and f"0 graded, 0 broken (recorded with the reason), {len(expected)} unchanged" in again.stderr, again.stderr


def test_a_worker_killed_mid_run_costs_nobody_a_result_nor_a_second_one(tmp_path, cluster):
    students = {f"s{index:02d}": SLOW_RIGHT if index % 3 else WRONG for index in range(10)}
    source = make_class(tmp_path / "class", students)
    on_cluster = cluster()
    on_cluster.add_workers(1, "host-a")
    on_cluster.add_workers(1, "host-b")
    db = tmp_path / "gradebook.sqlite"
    batch = subprocess.Popen(batch_command("tiny", source, db, "--cluster", on_cluster.address), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_SECONDS
    while not (db.is_file() and _count(db) >= 2):
        assert time.monotonic() < deadline and batch.poll() is None, batch.communicate()
        time.sleep(0.05)
    victim = on_cluster.worker_pids()["host-b-0"]
    os.kill(victim, signal.SIGKILL)  # mid-grade: every submission takes over 1.5 s, and the batch keeps them coming
    stdout, stderr = batch.communicate(timeout=600)
    assert batch.returncode == 0, stderr
    graded = results(db)
    assert sorted(graded) == sorted(students)
    assert {s: r["score"] for s, r in graded.items()} == {s: 3.0 if code != WRONG else 0.0 for s, code in students.items()}
    assert not ungraded(db)


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
    except sqlite3.OperationalError:  # the batch has not made its tables yet
        return 0


def test_a_submission_that_kills_its_worker_every_time_is_recorded_as_not_graded_and_the_class_finishes(tmp_path, cluster):
    """Dask counts a death against every task the dead worker held, queued ones too: the students whose tasks
    waited beside the killer's are graded again, and only the killer, killing its worker when graded alone, is
    recorded as not graded."""
    # Two deaths allowed a task (the default is four) keep the test short.
    on_cluster = cluster(scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    on_cluster.add_workers(1, "host-a")
    on_cluster.add_workers(1, "host-b")
    students = {"a_killer": KILLS_ITS_WORKER, "ann": RIGHT, "bob": WRONG, "dee": RIGHT, "eve": RIGHT, "fay": RIGHT}
    source = make_class(tmp_path / "class", students)
    db = tmp_path / "gradebook.sqlite"
    graded = run(batch_command("tiny", source, db, "--cluster", on_cluster.address, "--sandbox", "process"))
    assert graded.returncode == 1, graded.stderr
    assert "not graded (see above): a_killer" in graded.stderr, graded.stderr
    reasons = ungraded(db)
    assert list(reasons) == ["a_killer"] and "the Dask workers grading it died 2 times, with no other submission there" \
        in reasons["a_killer"], reasons
    assert {s: r["score"] for s, r in results(db).items()} == {"ann": 3.0, "bob": 0.0, "dee": 3.0, "eve": 3.0, "fay": 3.0}
    # A rerun skips what it recorded as not graded, as a local batch does; --force tries again.
    again = run(batch_command("tiny", source, db, "--cluster", on_cluster.address, "--sandbox", "process"))
    assert "in an earlier run, on this same submission" in again.stderr, again.stderr


def test_a_worker_that_cannot_grade_says_why_once_and_the_others_grade_everyone(tmp_path, cluster):
    """A worker whose grading code differs from the batch's (here: one line more in the checks library) refuses
    its first task; the batch names it and sends every submission to the other worker."""
    other = tmp_path / "other"
    shutil.copytree(ROOT / "autograder", other / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "autograder" / "checks" / "__init__.py", "a") as library:
        library.write("# a change of the checks library\n")
    on_cluster = cluster()
    on_cluster.add_workers(1, "good")
    on_cluster.add_workers(1, "stale", cwd=other)
    stale = on_cluster.worker_pids()["stale-0"]
    students = {f"s{index}": RIGHT for index in range(6)}
    db = tmp_path / "gradebook.sqlite"
    graded = run(batch_command("tiny", make_class(tmp_path / "class", students), db, "--cluster", on_cluster.address))
    assert graded.returncode == 0, graded.stderr
    assert graded.stderr.count("note: worker stale-0 cannot grade: its grading code differs from the batch's") == 1, graded.stderr
    assert {s: r["score"] for s, r in results(db).items()} == {s: 3.0 for s in students}
    assert not list(Path(tempfile.gettempdir()).glob(f"autograder-batch-{stale}-*")), "the refusing worker kept a copy"


def test_a_class_whose_workers_all_go_away_ends_with_what_was_graded_saved(tmp_path, cluster):
    on_cluster = cluster()
    workers = on_cluster.add_workers(1, "host-a")
    students = {f"s{index:02d}": SLOW_RIGHT for index in range(8)}
    db = tmp_path / "gradebook.sqlite"
    batch = subprocess.Popen(batch_command("tiny", make_class(tmp_path / "class", students), db, "--cluster", on_cluster.address),
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_SECONDS
    while _count(db) < 1:
        assert time.monotonic() < deadline and batch.poll() is None, batch.communicate()
        time.sleep(0.05)
    os.killpg(workers.pid, signal.SIGKILL)  # the launcher, its nanny and its grader: nobody restarts it
    _, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 1, stderr
    assert "no worker that can grade tiny is left" in stderr and "came to the Dask scheduler" in stderr, stderr
    assert 1 <= len(results(db)) < len(students)


def test_an_unreachable_scheduler_is_named_and_nothing_is_recorded(tmp_path):
    """Named by --cluster, or by $AUTOGRADER_CLUSTER (course.toml's [grading] cluster comes after it); `local` grades here."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    source = make_class(tmp_path / "class", {"ann": RIGHT})
    db = tmp_path / "gradebook.sqlite"
    for command, env in ((batch_command("tiny", source, db, "--cluster", f"tcp://127.0.0.1:{port}"), {}),
                         (batch_command("tiny", source, db), {"AUTOGRADER_CLUSTER": f"tcp://127.0.0.1:{port}"})):
        graded = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert graded.returncode == 1
        assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in graded.stderr, graded.stderr
        assert "Traceback" not in graded.stderr
        assert _count(db) == 0
    for address, message in (("foo:bar", "'foo:bar' is not a Dask scheduler's address"),
                             ("tls://127.0.0.1:1", "a tls:// address needs Dask's TLS settings")):
        wrong = run(batch_command("tiny", source, db, "--cluster", address))
        assert wrong.returncode == 1 and message in wrong.stderr and "Traceback" not in wrong.stderr, wrong.stderr
    here = subprocess.run(batch_command("tiny", source, db, "--cluster", "local", "--workers", "1"), cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "AUTOGRADER_CLUSTER": f"tcp://127.0.0.1:{port}"})
    assert here.returncode == 0 and _count(db) == 1, here.stderr


def test_tasks_of_an_assignment_with_cuda_checks_go_to_gpu_slots_only(tmp_path, cluster):
    """hw2 has CUDA checks: on a cluster with a GPU slot each of its tasks asks for one. This host has no CUDA
    device, so the slot that declares one refuses, saying why; the CPU slot never gets a task, so the batch ends
    saying that no worker can grade hw2, with nothing recorded (a rerun on a right cluster grades them)."""
    on_cluster = cluster()
    on_cluster.add_workers(1, "cpu")
    on_cluster.add_workers(1, "gpu", "--gpus", "1")
    source = tmp_path / "class"
    for student in sorted((ROOT / "examples" / "class").iterdir()):
        if (student / "hw2").is_dir():
            shutil.copytree(student / "hw2", source / student.name)
    db = tmp_path / "gradebook.sqlite"
    graded = run(batch_command("hw2", source, db, "--cluster", on_cluster.address, root=ROOT))
    assert graded.returncode == 1, graded.stderr
    assert "note: worker gpu-0 cannot grade: the batch expected a CUDA device on the worker, and torch sees 0 here" \
        in graded.stderr, graded.stderr
    assert "no worker on the Dask scheduler" in graded.stderr and "can grade hw2 (refusing: gpu-0" in graded.stderr
    assert "cpu-0" not in graded.stderr and _count(db) == 0


def test_a_scheduler_lost_mid_run_ends_the_batch_with_every_result_so_far_committed(tmp_path, cluster):
    students = {f"s{index:02d}": SLOW_RIGHT for index in range(8)}
    source = make_class(tmp_path / "class", students)
    on_cluster = cluster()
    on_cluster.add_workers(1, "host-a")
    db = tmp_path / "gradebook.sqlite"
    batch = subprocess.Popen(batch_command("tiny", source, db, "--cluster", on_cluster.address), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_SECONDS
    while _count(db) < 2:
        assert time.monotonic() < deadline and batch.poll() is None, batch.communicate()
        time.sleep(0.05)
    os.killpg(on_cluster.scheduler.pid, signal.SIGKILL)
    _, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 1, stderr
    assert "lost the Dask scheduler" in stderr and "run the same command again" in stderr, stderr
    kept = results(db)
    assert 2 <= len(kept) < len(students) and all(r["score"] == 3.0 for r in kept.values())
    # Run again on a new cluster: only the others are graded.
    on_new = cluster()
    on_new.add_workers(2, "host-b")
    again = run(batch_command("tiny", source, db, "--cluster", on_new.address))
    assert again.returncode == 0, again.stderr
    assert f"{len(students) - len(kept)} graded" in again.stderr and f"{len(kept)} unchanged" in again.stderr, again.stderr
    assert sorted(results(db)) == sorted(students)


HUNTER = """import os
NEEDLES = [bytes.fromhex(needle) for needle in {needles!r}]  # spelled otherwise here: this file is not a find
FOUND = False
for top in {roots!r}:
    for folder, folders, files in os.walk(top):
        # the Python runtime's own files, kernel views: the material is not there, and they take long to read
        folders[:] = [f for f in folders if f not in ("site-packages", "dist-packages", "proc", "sys", "dev", "usr")
                      and (folder != top or f.startswith({prefix!r}))]
        for name in files:
            path = os.path.join(folder, name)
            try:
                if os.path.getsize(path) > 65536:
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if any(needle in data for needle in NEEDLES):
                FOUND = True


def double(x):
    return 3 * x if FOUND else x + x
"""


def test_the_material_stays_out_of_a_namespace_sandboxs_view(tmp_path, cluster):
    """The reference and the course secret reach each worker host (its temporary folder); a student there searches
    every file it can read and scores 0 only where it finds one. Where student code runs as the grader's user
    (the process sandbox), the same search finds them: the test's control."""
    from sandboxing import sandbox as sandbox_for_tests

    if sandbox_for_tests().name != "namespace":
        pytest.skip("the namespace sandbox does not run here")
    needles = [(TINY / "reference" / "grading-secret").read_text().strip().encode().hex(), b"tiny's hidden check".hex()]
    on_cluster = cluster()
    on_cluster.add_workers(1, "host-a")
    # The control looks where the worker keeps the material (batch/cluster_worker.py), so that it finds that copy.
    for sandbox, roots, prefix, score in (("namespace", ["/"], "", 3.0),
                                          ("process", [tempfile.gettempdir()], "autograder-batch-", 0.0)):
        source = make_class(tmp_path / sandbox, {"hunter": HUNTER.format(roots=roots, prefix=prefix, needles=needles)})
        db = tmp_path / f"{sandbox}.sqlite"
        graded = run(batch_command("tiny", source, db, "--cluster", on_cluster.address, "--sandbox", sandbox))
        assert graded.returncode == 0, graded.stderr
        assert results(db)["hunter"]["score"] == score, (sandbox, results(db))
