"""The attack corpus (tests/attacks/) under every sandbox this host has.

Each hostile submission is graded for real, under each sandbox its `# stops:`
line names (tests/attacks/README.md): namespace, docker (skipped, saying why,
where no engine answers) and process-root, the process sandbox started as root
(Gradescope's containers), which runs the worker as a slot's unprivileged uid.
The test asserts that grading ends in bounded time, that only the hostile unit
loses points, and that nothing happened on the host: no file written, no
connection made, no secret shown, no process, cgroup or mount left behind, the
grader's memory bounded.

Under process-root the grader's reference is a root-only copy, as the Gradescope
package makes its own (a uid separation protects nothing that is world-readable).

The corpus takes minutes (most attacks run into time limits): `make test-slow`
runs it, in CI too; `make test` does not.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.checks.seeds import SECRET_FILE
from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from autograder.sandboxes import cgroups, template
from autograder.sandboxes.docker import DockerSandbox
from autograder.sandboxes.namespace import NamespaceSandbox
from autograder.sandboxes.process import ProcessSandbox
from autograder.sandboxes.slots import SLOT_UIDS, SLOTS
from sandboxing import require
from world_python import world_enterable_folder, world_runnable_venv

pytestmark = pytest.mark.slow  # minutes: see the docstring

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
ATTACKS = ROOT / "tests" / "attacks"
SECRET_NAME, SECRET = "AUTOGRADER_TEST_SECRET", "s3cr3t-0f-the-grader-7d1c"
GRADING_BOUND = 240.0  # seconds for one hostile submission, timeouts of its unit's checks included
MEMORY_BOUND = 300 << 20  # the grader's own resident memory may grow by this much at most
SANDBOXES = ("namespace", "docker", "process-root")


@dataclass(frozen=True)
class Attack:
    name: str
    file: str
    unit: str  # the unit, or the whole file, that may lose points
    code: str
    links: tuple[tuple[str, str], ...]
    leaves: tuple[str, ...]  # host paths it tries to create


def load(path: Path, marker: str, port: int, reference: Path) -> Attack:
    text = path.read_text().replace("__MARKER__", marker).replace("__PORT__", str(port))
    text = text.replace("__REFERENCE__", str(reference))
    header = dict(re.findall(r"^# (file|unit): (\S+)$", text, re.M))
    links = tuple(re.findall(r"^# link: (\S+) -> (\S+)$", text, re.M))
    leaves = tuple(re.findall(r"^# leaves: (\S+)$", text, re.M))
    return Attack(path.stem, header["file"], header["unit"], text, links, leaves)


def stopped_by(path: Path) -> list[str]:
    """The sandboxes an attack file's `# stops:` line says stop it."""
    declared = re.findall(r"^# stops:(.*)$", path.read_text(), re.M)
    return declared[0].split() if declared else []


def build(attack: Attack, directory: Path) -> Path:
    shutil.copytree(REFERENCE, directory, ignore=shutil.ignore_patterns("*checks.py", "README.md", "__pycache__"))
    with open(directory / attack.file, "a") as target:
        target.write("\n\n" + attack.code)
    for name, points_to in attack.links:
        (directory / name).unlink(missing_ok=True)
        (directory / name).symlink_to(points_to)
    return directory


NAMES = sorted(p.stem for p in ATTACKS.glob("*.py"))
STOPS = {name: stopped_by(ATTACKS / f"{name}.py") for name in NAMES}
CASES = [pytest.param(sandbox, name, id=f"{sandbox}-{name}") for sandbox in SANDBOXES for name in NAMES if sandbox in STOPS[name]]
PER_SANDBOX = [pytest.param(sandbox, id=sandbox) for sandbox in SANDBOXES]


def test_the_corpus_is_big_enough():
    assert len(NAMES) >= 15


def test_every_attack_says_which_sandboxes_stop_it():
    unknown = {name: stops for name, stops in STOPS.items() if not stops or set(stops) - set(SANDBOXES)}
    assert not unknown, f"a `# stops:` line naming only {', '.join(SANDBOXES)} is missing or wrong in: {unknown}"
    assert all({"namespace", "docker"} <= set(stops) for stops in STOPS.values()), "the jails stop every attack"


@pytest.fixture(scope="module")
def listener():
    """A server on 127.0.0.1 that records every connection made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    yield server
    server.close()


@pytest.fixture(scope="module")
def corpus(listener):
    """sandbox -> {name: (attack, result, seconds, the grader's memory growth), ...}, graded on first use."""
    graded: dict[str, dict] = {}
    folders: list[Path] = []

    def under(sandbox_name: str) -> dict:
        if sandbox_name not in graded:
            # Every user can enter it: the process sandbox's uid runs the Python made there.
            base = world_enterable_folder(f"autograder-attacks-{sandbox_name}-")
            folders.append(base)
            graded[sandbox_name] = _grade_corpus(sandbox_name, listener, base)
        return graded[sandbox_name]

    yield under
    for folder in folders:
        shutil.rmtree(folder)


def _sandbox(name: str, base: Path):
    if name == "process-root":
        if os.geteuid() != 0:
            pytest.skip("the process sandbox runs student code as an unprivileged uid only when started as root")
        sandbox = ProcessSandbox(python=str(world_runnable_venv(base / "venv") / "bin" / "python"))
        uid = _worker_uid(sandbox, base)
        # Where it kept root, kill_parent's kill(-1) would end every process of the host.
        assert SLOT_UIDS <= uid < SLOT_UIDS + 2 * SLOTS, f"the process sandbox started as root ran its worker as uid {uid}"
        return sandbox
    require(name)
    if name == "docker":
        return DockerSandbox(memory_bytes=2 << 30)
    return NamespaceSandbox(memory_bytes=2 << 30)  # the memory bomb meets its limit sooner


def _grade_corpus(sandbox_name: str, listener, base: Path) -> dict:
    sandbox = _sandbox(sandbox_name, base)
    reference = REFERENCE
    if sandbox_name == "process-root":  # root-only, as the Gradescope package makes its source
        private = base / "private"
        private.mkdir(mode=0o700)
        reference = private / "reference" / REFERENCE.name
        shutil.copytree(REFERENCE, reference, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(REFERENCE.parent / SECRET_FILE, reference.parent / SECRET_FILE)
    marker = f"agattack{os.getpid()}"
    port = listener.getsockname()[1]
    assignment = load_reference("hw1", reference)
    names = [name for name in NAMES if sandbox_name in STOPS[name]]
    os.environ[SECRET_NAME] = SECRET  # the grader's environment holds a secret
    mounts_before = _mounts()

    def run(name):
        attack = load(ATTACKS / f"{name}.py", marker, port, reference)
        directory = build(attack, base / name)
        start, memory = time.monotonic(), _resident()
        result = grade(assignment, directory, sandbox, "mallory", reveal_hidden=True)
        return attack, result, time.monotonic() - start, _resident() - memory

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:  # most of them wait for time limits
            graded = dict(zip(names, pool.map(run, names)))
    finally:
        del os.environ[SECRET_NAME]
        template.stop_all()  # what a grader leaves when it ends: its warm templates stopped
    graded["_mounts"] = (mounts_before, _mounts())
    graded["_marker"] = marker
    graded["_reference"] = reference
    return graded


@pytest.mark.parametrize("sandbox,name", CASES)
def test_attack_costs_only_its_unit_and_nothing_on_the_host(corpus, sandbox, name):
    attacked = corpus(sandbox)
    attack, result, seconds, growth = attacked[name]
    assert seconds < GRADING_BOUND, f"{name}: grading took {seconds:.0f} s"
    lost = {c.id: c.status for c in result.checks if c.score < c.max_score}
    assert lost, f"{name}: the hostile unit lost nothing"
    outside = {check: status for check, status in lost.items() if not (check + ".").startswith(attack.unit + ".")}
    assert not outside, f"{name}: other units lost points too: {outside}"
    assert not any("internal error" in c.message for c in result.checks), name
    for path in attack.leaves:
        assert not Path(path).exists(), f"{name}: wrote {path} on the host"
    assert not (attacked["_reference"] / f"{attacked['_marker']}-submission").exists()
    assert growth < MEMORY_BOUND, f"{name}: the grader's memory grew by {growth >> 20} MiB"
    text = "\n".join(c.message for c in result.checks)
    assert SECRET not in text, f"{name}: the grader's secret reached a message"
    assert len(text) < 2_000_000, f"{name}: messages of {len(text)} characters"


@pytest.mark.parametrize("sandbox", PER_SANDBOX)
def test_no_connection_reached_the_host(corpus, sandbox, listener):
    corpus(sandbox)
    try:
        connection, _ = listener.accept()
    except TimeoutError:
        return
    connection.close()
    pytest.fail(f"a check under {sandbox} connected to a listener on the host's 127.0.0.1")


@pytest.mark.parametrize("sandbox", PER_SANDBOX)
def test_nothing_left_behind(corpus, sandbox):
    """No process of a sandbox uid or named by an attack, no cgroup, no mount."""
    attacked = corpus(sandbox)
    deadline = time.monotonic() + 5
    while (left := _leftover_processes(attacked["_marker"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind: {left}"
    before, after = attacked["_mounts"]
    assert after == before
    ours = f"{cgroups.PREFIX}{os.getpid()}-"
    try:
        _, bases = cgroups._bases()
    except cgroups.CgroupUnavailable:
        bases = {}
    for base in set(bases.values()):
        assert not [p.name for p in base.iterdir() if p.name.startswith(ours)], base


@pytest.mark.parametrize("sandbox", PER_SANDBOX)
def test_shadow_and_reference_stay_unread(corpus, sandbox):
    attacked = corpus(sandbox)
    shadow = Path("/etc/shadow")
    content = shadow.read_text().strip() if shadow.exists() and os.access(shadow, os.R_OK) else ""
    for name in ("symlink_shadow", "symlink_reference"):
        _, result, _, _ = attacked[name]
        for check in result.checks:
            assert not (content and content.splitlines()[0] in check.message), check.id
    _, stolen, _, _ = attacked["symlink_reference"]
    assert all(c.status != "passed" for c in stolen.checks if c.id.startswith("optimizers."))
    assert any("optimizers.py" in c.message for c in stolen.checks if c.id.startswith("optimizers."))


def _worker_uid(sandbox, folder: Path) -> int:
    """The real uid of a worker the sandbox starts on folder (then stopped)."""
    proc = sandbox.start(folder)
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
    finally:
        proc.kill()
        proc.wait()
        proc.channel.close()
        proc.cleanup()


def _resident() -> int:
    with open("/proc/self/status") as status:
        kilobytes = re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)
    return int(kilobytes) << 10


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as mounts:
        return sorted(line.split(" - ")[0].split(" ", 4)[4] for line in mounts)


def _leftover_processes(marker: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
        name = re.search(r"^Name:\s+(.*)$", status, re.M).group(1)
        if "\nState:\tZ" not in status and (SLOT_UIDS <= uid < SLOT_UIDS + 2 * SLOTS or name.startswith(marker[:15])):
            found.append(f"{entry} {name} uid {uid}")
    return found
