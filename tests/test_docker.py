"""The docker sandbox: the `docker run` command's isolation, what the grading image and its build
context hold, and, where a Docker engine runs, a real image grading hw1 in containers that have
no network and no root, and the example class graded in containers as in the namespace sandbox.

`make test-docker` starts an engine where it can and sets AUTOGRADER_REQUIRE_SANDBOX=docker: the
tests that need an engine then fail instead of skipping."""

import ast
import contextlib
import csv
import importlib.metadata
import json
import os
import posixpath
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from autograder.protocol.client import Worker, WorkerFailure
from autograder.sandboxes import docker, image as image_build
from autograder.sandboxes.docker import DockerSandbox
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
PROTOCOL = ROOT / "autograder" / "protocol"
TEST_IMAGE = os.environ.get("AUTOGRADER_IMAGE", "autograder-worker:test")
REQUIRED = os.environ.get("AUTOGRADER_REQUIRE_SANDBOX") == "docker"  # make test-docker: fail, never skip

INSIDE = '''
import os, socket

def facts():
    """What a check's process can see and do inside its container."""
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=5).close()
        connect = "connected"
    except OSError as exc:
        connect = f"{type(exc).__name__}: {exc}"
    try:
        open("/submission/written.txt", "w").close()
        write = "written"
    except OSError as exc:
        write = type(exc).__name__
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    attached = libc.ptrace(16, os.getppid(), 0, 0)  # PTRACE_ATTACH to the zygote
    ptrace = "attached" if attached == 0 else os.strerror(ctypes.get_errno())
    try:
        socket.socket(socket.AF_UNIX).connect("/run/autograder/grader.sock")
        relink = "connected"
    except OSError as exc:
        relink = type(exc).__name__
    try:
        open("/run/autograder/x", "w").close()
        link_write = "written"
    except OSError as exc:
        link_write = type(exc).__name__
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "connect": connect,
        "write_submission": write,
        "capabilities": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "grader_files": sorted(os.listdir("/grader/autograder")),
        "ptrace_zygote": ptrace,
        "link": (os.listdir("/run/autograder") if os.path.isdir("/run/autograder") else None, relink, link_write),
        "tcp_metrics_saved": open("/proc/sys/net/ipv4/tcp_no_metrics_save").read().strip() == "0",
    }
'''


# --- the command line ------------------------------------------------------------------------------


def run_options(command: list[str], image: str) -> list[str]:
    """The options of `docker run` (what comes before the image: after it is the container's command)."""
    assert command[:2] == ["docker", "run"]
    return command[2 : command.index(image)]


def value_of(options: list[str], flag: str) -> str:
    assert options.count(flag) == 1, f"{flag} must be given once: {options}"
    return options[options.index(flag) + 1]


def mount_fields(spec: str) -> dict[str, str]:
    """A --mount value as Docker reads it: one CSV record of key=value fields (a bare key is true)."""
    (record,) = csv.reader([spec])
    return dict(field.split("=", 1) if "=" in field else (field, "true") for field in record)


def test_command_isolates_the_container():
    sandbox = DockerSandbox(image="some/image:tag", memory_bytes=3 << 30, pids=64, tmp_bytes=32 << 20, cpus=2)
    options = run_options(sandbox.command(Path("/srv/submissions/alice"), "worker-1", link=Path("/srv/link")), "some/image:tag")
    for flag in ("--rm", "--read-only"):
        assert flag in options
    assert "--init" not in options  # the template is pid 1: it kills every process between submissions
    assert value_of(options, "--network") == "none"
    assert value_of(options, "--cap-drop") == "ALL"
    # The template, the container's root, may make its zygotes the check uid and kill its processes; no more.
    assert value_of(options, "--user") == "0:0"
    added = {value for flag, value in zip(options, options[1:]) if flag == "--cap-add"}
    assert {"SETUID", "SETGID", "KILL"} <= added <= {"SETUID", "SETGID", "KILL", "DAC_READ_SEARCH"}
    assert value_of(options, "--security-opt") == "no-new-privileges"
    assert value_of(options, "--pids-limit") == "64"
    assert value_of(options, "--memory") == value_of(options, "--memory-swap") == str(3 << 30)  # no swap
    assert float(value_of(options, "--cpus")) == 2
    tmpfs = dict(value.partition(":")[::2] for flag, value in zip(options, options[1:]) if flag == "--tmpfs")
    assert f"size={32 << 20}" in tmpfs["/tmp"].split(",")
    assert "ro" in tmpfs["/sys/fs/cgroup"].split(",")  # the container's counters, hidden
    assert "--privileged" not in options and "--gpus" not in options


@pytest.mark.parametrize(
    "gpus, cuda, given",
    [(None, False, False), (None, True, True), (False, True, False), (True, False, True), (True, True, True)],
)
def test_gpus_are_given_when_the_checks_ask_for_cuda(gpus, cuda, given):
    """By default a container gets the GPUs only when its checks use CUDA; gpus=False never, True always."""
    options = run_options(DockerSandbox(image="img", gpus=gpus).command(Path("/s"), "w", link=Path("/l"), cuda=cuda), "img")
    if given:
        assert value_of(options, "--gpus") == "all"
    else:
        assert "--gpus" not in options
    assert "--privileged" not in options and "--device" not in options


def test_the_dockerfiles_cuda_recipe_pairs_a_base_with_its_torch_build():
    """The documented CUDA build: a base whose Python is 3.11 or newer (Ubuntu 24.04: 3.12), and the torch
    index of that base's CUDA version (12.8 -> cu128)."""
    comment = " ".join(line.lstrip("# ").rstrip("\\ ") for line in DOCKERFILE.read_text().splitlines() if line.startswith("#"))
    (recipe,) = re.findall(r"autograder build-image --image \S+ (?:--build-arg \S+ ?)+", comment)
    args = dict(arg.split("=", 1) for arg in shlex.split(recipe)[5::2])
    base = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-(?:cudnn-)?runtime-ubuntu(\d+\.\d+)", args["BASE"])
    assert base, args["BASE"]
    assert float(base.group(3)) >= 24.04  # Ubuntu 22.04's python3 is 3.10
    assert args["TORCH_INDEX"] == f"https://download.pytorch.org/whl/cu{base.group(1)}{base.group(2)}"


def mounts(options: list[str]) -> dict[str, dict[str, str]]:
    """Each --mount's fields, by its target."""
    found = [mount_fields(value) for flag, value in zip(options, options[1:]) if flag == "--mount"]
    return {mount["target"]: mount for mount in found}


def test_submission_and_the_link_alone_are_mounted_read_only():
    command = DockerSandbox(image="img").command(Path("/srv/submissions/alice"), "w", link=Path("/tmp/link"))
    options = run_options(command, "img")
    assert mounts(options) == {
        "/submission": {"type": "bind", "source": "/srv/submissions/alice", "target": "/submission", "readonly": "true"},
        "/run/autograder": {"type": "bind", "source": "/tmp/link", "target": "/run/autograder", "readonly": "true"},
    }
    assert "--volume" not in options and "-v" not in options  # nothing else of the host


def test_a_comma_in_the_submission_path_stays_in_the_source():
    """A path like `Smith, Jane` must neither break the mount nor add fields to it."""
    path = '/srv/submissions/Smith, Jane,target=/grader "x"'
    options = run_options(DockerSandbox(image="img").command(Path(path), "w", link=Path(path + "-link")), "img")
    found = mounts(options)
    assert found["/submission"]["source"] == path and found["/submission"]["readonly"] == "true"
    assert found["/run/autograder"]["source"] == path + "-link" and len(found) == 2


def test_grader_environment_stays_outside(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", "s3cr3t-token-9f2c")
    command = DockerSandbox(image="img").command(Path("/srv/submissions/alice"), "w", link=Path("/srv/link"))
    assert not any("AUTOGRADER_TEST_SECRET" in part or "s3cr3t-token-9f2c" in part for part in command)
    options = run_options(command, "img")
    assert "--env-file" not in options
    given = [value for flag, value in zip(options, options[1:]) if flag in ("-e", "--env")]
    # A bare NAME would copy the grader's value into the container.
    assert given and all("=" in value for value in given)
    assert {value.split("=", 1)[0] for value in given} == {"HOME"}


def test_container_runs_the_template_with_a_safe_path_linked_to_the_grader():
    command = DockerSandbox(image="img").command(Path("/srv/submissions/alice"), "w", link=Path("/tmp/link,1"))
    assert command[command.index("img") + 1 :] == [
        "python", "-P", "-m", "autograder.protocol.container", "--connect", "/run/autograder/grader.sock"]
    options = run_options(command, "img")
    mounts = [mount_fields(value) for flag, value in zip(options, options[1:]) if flag == "--mount"]
    assert {"type": "bind", "source": "/tmp/link,1", "target": "/run/autograder", "readonly": "true"} in mounts
    assert "-i" not in options and "--interactive" not in options  # nothing on stdin: the socket is the link


# --- the image ---------------------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined and comments dropped."""
    found, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    return found


def arguments(text: str) -> list[str]:
    """An instruction's arguments, in the JSON form or the shell form."""
    return json.loads(text) if text.startswith("[") else shlex.split(text)


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions after its FROM, by name ("" for the last, the image)."""
    found, name = {}, None
    for keyword, text in instructions(dockerfile):
        if keyword == "FROM":
            words = text.split()
            name = words[-1] if len(words) == 3 and words[1].upper() == "AS" else ""
            found[name] = []
        elif name is not None:
            found[name].append((keyword, text))
    return found


def copies_of(steps) -> list[tuple[list[str], list[str], str]]:
    """(--options, sources, destination) of each COPY or ADD."""
    found = []
    for keyword, text in steps:
        if keyword in ("COPY", "ADD"):
            words = arguments(text)
            *sources, destination = [w for w in words if not w.startswith("--")]
            found.append(([w for w in words if w.startswith("--")], sources, destination))
    return found


def test_image_holds_only_the_worker_modules_and_the_packages_venv():
    """The image copies the worker's modules into /grader and the virtual environment of the packages
    stage; host/ (CA bundle, indexes, wheel) enters that stage alone, whose layers the image does not keep."""
    by_stage = stages(DOCKERFILE)
    assert "" in by_stage and "packages" in by_stage
    image = copies_of(by_stage[""])
    assert image
    for options, sources, destination in image:
        if options:
            assert (options, sources, destination) == (["--from=packages"], ["/opt/venv"], "/opt/venv")
            continue
        assert posixpath.normpath(destination).startswith("/grader/autograder")
        for source in sources:
            source = posixpath.normpath(source)
            assert source == "autograder/__init__.py" or source == "autograder/protocol" or source.startswith("autograder/protocol/"), source
    for name, steps in by_stage.items():
        if name != "":
            assert all(sources == ["host/"] and name == "packages" for _, sources, _ in copies_of(steps)), name


def test_image_pins_torch_like_the_project():
    pins = re.findall(r"(?<![\w.-])torch(?:[=<>!~]=?[^\s\"']*)?(?![\w.-])", " ".join(text for keyword, text in instructions(DOCKERFILE) if keyword == "RUN"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert pins == ["torch==2.13.0"]
    assert "torch==2.13.0" in project


def test_image_runs_as_nobody_with_the_worker_on_its_path():
    steps = instructions(DOCKERFILE)
    users = [text for keyword, text in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    environment = dict(pair.split("=", 1) for keyword, text in steps if keyword == "ENV" for pair in shlex.split(text))
    assert environment["PYTHONPATH"] == "/grader"
    assert not any(keyword == "ENTRYPOINT" for keyword, _ in steps)  # docker.py's command runs as given
    (cmd,) = [arguments(text) for keyword, text in steps if keyword == "CMD"]
    sandbox_command = DockerSandbox(image="img").command(Path("/s"), "w", link=Path("/l"))
    # The same interpreter and flags as the sandbox's template; a worker for /submission over stdin and stdout.
    assert sandbox_command[sandbox_command.index("img") + 1 :][:3] == cmd[:3] == ["python", "-P", "-m"]
    assert cmd[3:] == ["autograder.protocol.worker", "/submission"]


# --- the build context -------------------------------------------------------------------------------


def assembled(folder: Path, root: Path = ROOT, **host) -> set[str]:
    folder.mkdir()
    image_build.assemble(folder, root, **host)
    return set(image_build.context_files(folder))


def worker_modules() -> set[str]:
    return {"autograder/__init__.py"} | {f"autograder/protocol/{p.name}" for p in PROTOCOL.glob("*.py")}


def test_build_context_holds_only_the_dockerfile_and_the_worker_modules(tmp_path):
    """Whatever else the checkout holds (a venv, caches, the reference, secrets), the context is
    the Dockerfile and the worker's modules, with a host/ folder that holds nothing by default."""
    checkout = tmp_path / "checkout"
    for relative in [*worker_modules(), "docker/Dockerfile"]:
        (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
        (checkout / relative).write_bytes((ROOT / relative).read_bytes())
    for relative in (".venv/lib/site.py", "reference/hw1/neuron.py", "autograder/cli.py", "autograder/protocol/notes.txt",
                     "autograder/protocol/__pycache__/wire.cpython-311.pyc", ".env", "docker/secret.pem"):
        (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
        (checkout / relative).write_text("not for the image")
    assert assembled(tmp_path / "context", checkout) == {"Dockerfile"} | worker_modules()
    assert (tmp_path / "context" / "host").is_dir()


def test_build_context_carries_the_hosts_ca_bundle_and_torch_wheel(tmp_path):
    bundle, wheel = tmp_path / "bundle.pem", tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    wheel.write_bytes(b"PK wheel")
    files = assembled(tmp_path / "context", ca_bundle=bundle, torch_wheel=wheel)
    assert files == {"Dockerfile"} | worker_modules() | {"host/ca-certificates.crt", f"host/wheels/{wheel.name}"}
    assert (tmp_path / "context" / "host" / "wheels" / wheel.name).read_bytes() == b"PK wheel"


def test_the_image_label_hashes_what_the_image_copies(tmp_path):
    """The label's hash covers exactly the worker's files the context holds and the Dockerfile copies."""
    copied = {posixpath.normpath(source) for steps in stages(DOCKERFILE).values()
              for options, sources, _ in copies_of(steps) if not options for source in sources}
    assert copied - {"host"} == set(docker.WORKER_MODULES)
    assert set(docker.worker_module_files(ROOT)) == assembled(tmp_path / "context") - {"Dockerfile"}


def test_worker_modules_need_nothing_else_of_the_package():
    """What is copied into the image imports only the standard library, numpy, torch and the protocol."""
    for path in [ROOT / "autograder" / "__init__.py", *sorted(PROTOCOL.glob("*.py"))]:
        package = ["autograder", "protocol"] if path.parent == PROTOCOL else ["autograder"]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                parent = package[: len(package) - node.level + 1] if node.level else []
                base = ".".join(parent + ([node.module] if node.module else []))
                # `from autograder import checks` imports a module of the package: name it.
                modules = [f"{base}.{alias.name}" for alias in node.names] if base == "autograder" else [base]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top == "autograder":
                    assert module.startswith("autograder.protocol"), f"{path.name} imports {module}"
                else:
                    assert top in sys.stdlib_module_names or top in ("numpy", "torch"), f"{path.name} imports {module}"


# --- availability ------------------------------------------------------------------------------------


def engine_missing() -> str | None:
    """Why no Docker engine answers here, or None when one does."""
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    return None if info.returncode == 0 else f"`docker info` failed: {(info.stderr or info.stdout).strip()[-300:]}"


def test_unavailable_says_why_without_an_engine(tmp_path, monkeypatch):
    """An engine that does not answer (here: a socket nobody listens on, whether or not one runs)."""
    if shutil.which("docker") is None:
        assert DockerSandbox().unavailable() == "the docker command is not installed"
        return
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    reason = DockerSandbox().unavailable()
    assert reason.startswith("no Docker engine answers") and str(tmp_path / "docker.sock") in reason


def test_unavailable_passes_on_what_docker_said(tmp_path, monkeypatch):
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    reason = DockerSandbox().unavailable()
    assert reason.startswith("no Docker engine answers") and "Cannot connect to the Docker daemon" in reason


# --- a real image, where an engine runs --------------------------------------------------------------


@pytest.fixture(scope="module")
def image():
    """The grading image of this checkout, built where it is not current (image.build keeps it otherwise)."""
    reason = engine_missing()
    if reason:
        if REQUIRED:
            pytest.fail(f"make test-docker needs a Docker engine: {reason}")
        pytest.skip(f"no Docker engine here: {reason}")
    try:  # with the build arguments make test-docker gave build-image: the same image, kept
        image_build.build(TEST_IMAGE, os.environ.get("AUTOGRADER_BUILD_ARGS", "").split())
    except image_build.BuildError as exc:
        pytest.fail(f"the grading image could not be built: {exc}")
    return TEST_IMAGE


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_the_built_image_holds_this_checkouts_worker(image):
    assert DockerSandbox(image=image).unavailable() is None


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_reference_hw1_scores_full_marks_in_containers(image):
    reference = ROOT / "reference" / "hw1"
    result = grade(load_reference("hw1", reference), reference, DockerSandbox(image=image), "alice")
    assert result.sandbox == "docker"
    assert (result.score, result.max_score) == (15, 15), [c for c in result.checks if c.status != "passed"]


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_container_has_no_network_no_root_and_no_grader(image, tmp_path):
    (tmp_path / "inside.py").write_text(INSIDE)
    with Worker(DockerSandbox(image=image), tmp_path) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        facts = session.student.inside.facts()
        session.end()
    assert facts["uid"] != 0 and facts["gid"] != 0
    assert facts["interfaces"] == ["lo"]
    assert facts["connect"] != "connected"
    assert facts["write_submission"] in ("OSError", "PermissionError")
    assert int(facts["capabilities"], 16) == 0 and facts["no_new_privs"] == "1"
    assert facts["grader_files"] == ["__init__.py", "protocol"]
    assert facts["ptrace_zygote"] != "attached"  # a check cannot take over its zygote
    assert not facts["tcp_metrics_saved"]  # the network namespace outlives a submission: no TCP metrics cache
    listed, relink, link_write = facts["link"]  # the grader's socket: gone once accepted; the folder read-only
    assert list(listed) == [] and relink == "FileNotFoundError" and link_write == "OSError"
    assert not (tmp_path / "written.txt").exists()


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_a_submission_cannot_stand_in_for_the_workers_modules(image, tmp_path):
    """The submission is the working directory, but not on sys.path while the zygote imports."""
    (tmp_path / "copy.py").write_text('raise SystemExit("the submission\'s copy.py ran in the zygote")\n')
    (tmp_path / "inside.py").write_text(INSIDE)
    with Worker(DockerSandbox(image=image), tmp_path) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        assert session.student.inside.facts()["uid"] != 0
        session.end()


LEAVE_BEHIND = '''
import ctypes, os, resource, signal, socket, subprocess, sys

MARKER = "left-behind-by-the-last-submission"
KEY = 0x5EC

def leave():
    """Everything a check's uid can leave in its container, and a try at ending the template."""
    with open("/tmp/left.txt", "w") as f:
        f.write(MARKER)
    os.makedirs("/tmp/closed/inner")
    open("/tmp/closed/inner/f", "w").close()
    os.chmod("/tmp/closed/inner", 0)
    os.chmod("/tmp/closed", 0)
    with open("/dev/shm/left", "w") as f:
        f.write(MARKER)
    os.close(os.open("/dev/mqueue/left", os.O_CREAT | os.O_RDWR, 0o600))
    libc = ctypes.CDLL(None, use_errno=True)
    made = [libc.shmget(KEY, 4096, 0o1666), libc.semget(KEY, 1, 0o1666), libc.msgget(KEY, 0o1666)]
    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(600)  # {MARKER}"], start_new_session=True)
    try:
        os.kill(1, signal.SIGINT)
    except PermissionError:
        pass  # another uid's
    import fcntl
    fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK)
    changed = []  # what of pid 1, whose forks the next submission's processes are, this check could change
    for name, change in [
        ("prlimit", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (20, 20))),
        ("priority", lambda: os.setpriority(os.PRIO_PROCESS, 1, 17)),
        ("scheduler", lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0))),
        ("affinity", lambda: os.sched_setaffinity(1, {min(os.sched_getaffinity(0))})),
    ]:
        try:
            change()
            changed.append(name)
        except OSError:
            pass
    return socket.gethostname(), made, changed, state()

def state():
    """What a process inherits from pid 1."""
    import fcntl
    return {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE), "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "scheduler": os.sched_getscheduler(0), "stdin": fcntl.fcntl(0, fcntl.F_GETFL)}

def find():
    """What this check finds of a former submission in its container."""
    processes = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if MARKER.encode() in f.read() and int(pid) != os.getpid():
                    processes.append(pid)
        except OSError:
            pass
    ipc = {kind: open(f"/proc/sysvipc/{kind}").read().splitlines()[1:] for kind in ("shm", "msg", "sem")}
    tmp = [name for name in os.listdir("/tmp") if not name.startswith("autograder-pycache-")]  # its zygote's own
    return socket.gethostname(), {"tmp": tmp, "shm": os.listdir("/dev/shm"), "mqueue": os.listdir("/dev/mqueue"),
                                  "ipc": {kind: rows for kind, rows in ipc.items() if rows}, "processes": processes,
                                  "cgroup": os.listdir("/sys/fs/cgroup")}, state()

def loopback():
    """A TCP connection on the loopback, closed: it waits a minute in TIME_WAIT, in the container's table."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    client.close()
    accepted.close()
    server.close()
    return socket.gethostname(), len(open("/proc/net/tcp").read().splitlines()) - 1

def orphan_and_kill_the_zygote():
    """A process of its own, in a session of its own, then the zygote killed: the check dies with it."""
    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(600)  # {MARKER}"], start_new_session=True)
    os.kill(os.getppid(), signal.SIGKILL)

def tcp_rows():
    return socket.gethostname(), open("/proc/net/tcp").read().splitlines()[1:]
'''


def one_after_the_other(tmp_path: Path) -> list[Path]:
    """Two submissions holding LEAVE_BEHIND, for one sandbox to grade in turn (in one container)."""
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        folder.mkdir()
        (folder / "inside.py").write_text(LEAVE_BEHIND)
    return folders


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_the_next_submission_in_a_container_finds_nothing_of_the_last(image, tmp_path):
    """One container serves a slot's submissions in turn: what a check leaves in /tmp, /dev/shm,
    /dev/mqueue, System V IPC or a process of its own is gone when the next submission starts; it
    can change neither pid 1 (limits, priority, scheduling, affinity; a SIGINT does not end it) nor
    the next one's stdin, and it sees no cgroup counter."""
    sandbox, first, second = DockerSandbox(image=image), *one_after_the_other(tmp_path)
    with Worker(sandbox, first) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        before = session.student.inside.state()
        left_in, made, changed, after = session.student.inside.leave()
        assert all(ident >= 0 for ident in made), made
        assert after["stdin"] != before["stdin"]  # its own stdin's flags, changed
        assert session.student.inside.find()[1]["processes"]  # the check's own leftovers, seen while it runs
        session.end()
    assert changed == [], f"a check changed pid 1's {changed}"
    with Worker(sandbox, second) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        found_in, found, inherited = session.student.inside.find()
        session.end()
    assert found_in == left_in  # the same container
    assert found == {"tmp": [], "shm": [], "mqueue": [], "ipc": {}, "processes": [], "cgroup": []}
    assert inherited == before


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_a_submission_whose_zygote_was_killed_leaves_nothing_running(image, tmp_path):
    """A check that kills its own zygote (the template may reap it before the grader closes it) leaves
    its orphan to the template, which kills it before the next submission."""
    sandbox, first, second = DockerSandbox(image=image), *one_after_the_other(tmp_path)
    with Worker(sandbox, first) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        used_in, _ = session.student.inside.tcp_rows()
        with contextlib.suppress(WorkerFailure):  # its answer may come before it dies with its zygote
            session.student.inside.orphan_and_kill_the_zygote()
        time.sleep(1.5)  # the template reaps its dead zygote (once a second) before the grader closes it
    with Worker(sandbox, second) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        found_in, found, _ = session.student.inside.find()
        session.end()
    assert found["processes"] == []
    assert found_in == used_in  # closed all the same: the container was kept


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_a_container_whose_loopback_was_used_is_not_used_again(image, tmp_path):
    """A closed TCP connection stays in the container's table for a minute (TIME_WAIT): its ports are
    the last submission's, so the next one gets a fresh container."""
    sandbox, first, second = DockerSandbox(image=image), *one_after_the_other(tmp_path)
    with Worker(sandbox, first) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        used_in, rows = session.student.inside.loopback()
        session.end()
    assert rows >= 1
    with Worker(sandbox, second) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        found_in, found = session.student.inside.tcp_rows()
        session.end()
    assert found_in != used_in and found == []


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_a_container_serves_one_submission_after_another_from_its_own_folder(image, tmp_path):
    """Each submission's checks see that submission alone at /submission, in the same container."""
    sandbox = DockerSandbox(image=image)
    seen = []
    for name in ("alice", "bob"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "inside.py").write_text(
            "import os, socket\n"
            f"def look():\n    return socket.gethostname(), os.getcwd(), sorted(os.listdir('/submission')), {name!r}\n")
        (tmp_path / name / f"{name}.txt").write_text(name)
        with Worker(sandbox, tmp_path / name) as worker:
            session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
            seen.append(session.student.inside.look())
            session.end()
    (alice_host, alice_cwd, alice_files, alice), (bob_host, bob_cwd, bob_files, bob) = seen
    assert alice_host == bob_host and alice_cwd == bob_cwd == "/submission"
    assert (alice_files, alice) == (["alice.txt", "inside.py"], "alice")
    assert (bob_files, bob) == (["bob.txt", "inside.py"], "bob")


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_the_image_runs_the_hosts_torch_build_and_keeps_nothing_of_the_build(image):
    ran = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "python", "-c",
         "import os, sys, torch; print(torch.__version__, sys.version_info >= (3, 11), os.path.exists('/tmp/host'))"],
        capture_output=True, text=True, timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [importlib.metadata.version("torch"), "True", "False"]
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                             capture_output=True, text=True, timeout=60)
    assert history.returncode == 0 and "/opt/venv" in history.stdout
    assert "/tmp/host" not in history.stdout, "a layer of the image holds the build's host/ folder"


def checks_of(db: Path) -> dict[tuple[str, str, str], tuple[str, float]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT assignment, student, check_id, status, score FROM checks").fetchall()
    return {(a, student, check): (status, score) for a, student, check, status, score in rows}


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_the_example_class_grades_alike_in_containers_and_in_the_jail(image, tmp_path):
    """`autograder demo` (every homework of the example class: batch, gradebook, reports) with
    --sandbox docker gets, check by check, the gradebook the namespace (else process) sandbox gets."""
    other = sandbox_for_tests().name
    graded = {}
    for name in ("docker", other):
        ran = subprocess.run(
            [sys.executable, "-m", "autograder", "demo", "--sandbox", name, "--workers", "2", "-o", str(tmp_path / name)],
            cwd=ROOT, capture_output=True, text=True, timeout=1200,
            env={**os.environ, "PYTHONPATH": str(ROOT), "AUTOGRADER_IMAGE": image},
        )
        assert ran.returncode == 0, ran.stderr[-3000:]
        graded[name] = checks_of(tmp_path / name / "gradebook.sqlite")
    assert len(graded["docker"]) > 100
    differing = {key: (graded["docker"].get(key), graded[other].get(key)) for key in graded["docker"].keys() | graded[other].keys()
                 if graded["docker"].get(key) != graded[other].get(key)}
    assert not differing, f"docker vs {other}: {differing}"


@pytest.mark.slow  # builds the image where it is not current (a minute)
def test_the_grader_reads_a_containers_cpu_time_from_its_cgroup(image, tmp_path):
    """Timed checks and CPU limits count the container's CPU time, as in the namespace sandbox: a
    second of busy work shows as about a second, a second of sleep as next to nothing."""
    (tmp_path / "work.py").write_text(
        "import time\n"
        "def busy(seconds):\n    end = time.process_time() + seconds\n    while time.process_time() < end:\n        pass\n"
        "def idle(seconds):\n    time.sleep(seconds)\n"
    )
    with Worker(DockerSandbox(image=image), tmp_path) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=30, check_timeout=60)
        spent = []
        for call in (session.student.work.busy, session.student.work.idle):
            before = session.cpu_time()
            call(1.0)
            spent.append(session.cpu_time() - before)
        session.end()
    busy, idle = spent
    assert 0.9 < busy < 1.5 and idle < 0.2, spent
