"""A Dask cluster on 127.0.0.1 for tests and benchmarks: a `dask scheduler` and `autograder worker` processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import distributed

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 120  # for the scheduler to listen and workers to join (each imports torch)


class Cluster:
    """A scheduler and `autograder worker` processes on 127.0.0.1, each in a process group of its own."""

    def __init__(self, folder: Path, scheduler_env: dict | None = None):
        self.folder, self.processes = folder, []
        address_file = folder / "scheduler.json"
        self.scheduler = self.spawn([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                      "--port", "0", "--no-dashboard", "--scheduler-file", str(address_file)],
                                     "scheduler", scheduler_env)
        deadline = time.monotonic() + START_SECONDS
        while not address_file.is_file() or not address_file.read_text().strip():
            assert time.monotonic() < deadline and self.scheduler.poll() is None, self.log("scheduler")
            time.sleep(0.1)
        self.address = json.loads(address_file.read_text())["address"]

    def spawn(self, command, name, env=None, cwd=ROOT):
        """command in a process group of its own, its output in folder/name.log."""
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **(env or {})})
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.is_file() else ""

    def add_workers(self, slots: int, name: str, *options: str, cwd: Path = ROOT) -> subprocess.Popen:
        """`autograder worker` with `slots` graders (the autograder package found from cwd), once they have all joined."""
        with distributed.Client(self.address, set_as_default=False, timeout=30) as client:
            before = len(client.scheduler_info(n_workers=-1)["workers"])
            process = self.spawn([sys.executable, "-m", "autograder", "worker", self.address, "--slots", str(slots),
                                   "--name", name, *options], name, cwd=cwd)
            try:
                client.wait_for_workers(before + slots, timeout=START_SECONDS)
            except TimeoutError:
                raise AssertionError(f"the workers did not join:\n{self.log(name)}") from None
        return process

    def worker_pids(self) -> dict[str, int]:
        """Each grader's name -> its pid."""
        with distributed.Client(self.address, set_as_default=False, timeout=30) as client:
            names = {address: info["name"] for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}
            return {names[address]: pid for address, pid in client.run(os.getpid).items()}

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
