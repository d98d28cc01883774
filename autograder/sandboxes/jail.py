"""The inside of the namespace sandbox: kernel calls that build the jail, run
by processes the grader starts (see namespace.py for the process model).

This file runs as a script, never imported by the grader, and uses only the
standard library: `python jail.py outer CONFIG` builds a worker's jail and
starts the zygote in it; inside the jail the zygote runs as
`python /grader/jail.py zygote CONFIG`, and every check's process confines
itself further with `confine_check` before it imports student code.

CONFIG is JSON from the grader: binds ([host path, jail path, kind]), links,
devices, the host uids of the slot (as root), sizes and limits.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
# statvfs flags that a mount in a user namespace must keep when remounted (they are locked).
LOCKED_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC, os.ST_RDONLY: MS_RDONLY}
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
CHECK_UID = 1000  # a check's uid inside the jail (when the grader runs as root)

libc = ctypes.CDLL(None, use_errno=True)


def call(name: str, *args) -> int:
    result = getattr(libc, name)(*args)
    if result == -1:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}{tuple(a.decode() if isinstance(a, bytes) else a for a in args)}: {os.strerror(errno)}")
    return result


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: text.encode() if text is not None else None  # noqa: E731
    call("mount", encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data))


def die_with_parent() -> None:
    """SIGKILL when the parent dies, so nothing outlives the grader (a race with the parent is checked)."""
    parent = os.getppid()
    call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


# --- the outer process: builds the jail, then waits for the zygote -----------


def outer(config: dict) -> None:
    """Run by the grader, as root or as the user the grader runs as.

    The grader says "g" on the `go` fd once we are in our cgroup. As root, the
    root file system is built with root's rights (the runtime may live where
    only root can look, such as /root/.pyenv) and only then does init enter a
    user namespace, whose maps we write from out here: jail uid 0 -> host uid Z,
    1000 -> C. Not root, we enter a user namespace of our one uid first."""
    die_with_parent()
    if os.read(config["go"], 1) != b"g":
        os._exit(1)
    os.close(config["go"])
    as_root = config["uids"] is not None
    if not as_root:
        uid, gid = os.geteuid(), os.getegid()  # in the new namespace they read as unmapped
        call("unshare", CLONE_NEWUSER)
        write_file("/proc/self/setgroups", "deny")  # required before an unprivileged gid map
        write_file("/proc/self/uid_map", f"0 {uid} 1")
        write_file("/proc/self/gid_map", f"0 {gid} 1")
        become(0, 0, keep_groups=True)
    call("unshare", CLONE_NEWPID | (0 if as_root else CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS))
    to_init_r, to_init_w = os.pipe()
    from_init_r, from_init_w = os.pipe()
    init = os.fork()
    if init == 0:
        try:
            os.close(to_init_w)
            os.close(from_init_r)
            be_init(config, as_root, tell_outer=from_init_w, from_outer=to_init_r)
        except BaseException as exc:
            print(f"autograder jail: {exc}", file=sys.stderr)
        os._exit(1)
    os.close(to_init_r)
    os.close(from_init_w)
    if as_root:
        if os.read(from_init_r, 1) == b"u":  # init is in its user namespace
            zygote, check = config["uids"]
            for kind in ("uid", "gid"):
                write_file(f"/proc/{init}/{kind}_map", f"0 {zygote} 1\n{CHECK_UID} {check} 1\n")
            os.write(to_init_w, b"m")
    exit_like(wait_for(init))


def be_init(config: dict, as_root: bool, tell_outer: int, from_outer: int) -> None:
    """pid 1 of the jail: build the root file system, start the zygote, reap orphans."""
    die_with_parent()
    call("unshare", CLONE_NEWNS)  # ours alone: the pivot must not move outer's root too
    build_root(config)
    if as_root:
        call("unshare", CLONE_NEWUSER)
        os.write(tell_outer, b"u")
        if os.read(from_outer, 1) != b"m":
            os._exit(1)
        become(0, 0, keep_groups=False)
        die_with_parent()  # again: changing credentials clears it
        # Namespaces owned by the new user namespace: the zygote may then make the checks' own.
        call("unshare", CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    os.close(tell_outer)
    os.close(from_outer)
    call("sethostname", b"sandbox", 7)
    limit(config["zygote_limits"])
    zygote = os.fork()
    if zygote == 0:
        try:
            die_with_parent()
            call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            os.chdir("/submission")
            os.execve(config["python"], [config["python"], "-s", "/grader/jail.py", "zygote", json.dumps(config)], sandbox_env(config))
        except BaseException as exc:
            print(f"autograder jail: cannot start the worker: {exc}", file=sys.stderr)
        os._exit(1)
    exit_like(wait_for(zygote))


def build_root(config: dict) -> None:
    """A tmpfs root holding mount points only; binds come from /oldroot, then the old root goes away.

    The tmpfs is mounted on /tmp of our private mount namespace and pivoted to
    (the bubblewrap way), so even host paths under /tmp stay reachable as sources."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    os.mkdir("/tmp/oldroot")
    call("syscall", SYS_PIVOT_ROOT[os.uname().machine], b"/tmp", b"/tmp/oldroot")
    os.chdir("/")
    os.makedirs("/tmp")
    mount_tmp(config)  # before the binds: a Python in a checkout under /tmp is bound onto it
    for source, target, kind in config["binds"]:
        bind("/oldroot" + source, target, kind)
    for link, points_to in config["links"]:  # /lib -> usr/lib and the like, as on the host
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(points_to, link)
    for device in config["devices"]:
        bind(f"/oldroot/dev/{device}", f"/dev/{device}", "dev")
    os.makedirs("/etc", exist_ok=True)
    write_file("/etc/passwd", f"root:x:0:0::/tmp:/bin/false\nsandbox:x:{CHECK_UID}:{CHECK_UID}::/tmp:/bin/false\n")
    write_file("/etc/group", f"root:x:0:\nsandbox:x:{CHECK_UID}:\n")
    os.makedirs("/proc")
    mount_proc()
    call("umount2", b"/oldroot", MNT_DETACH)
    os.rmdir("/oldroot")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def bind(source: str, target: str, kind: str) -> None:
    """kind: "ro" (read-only tree), "file" (read-only file), "dev" (a device node)."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write_file(target, "")
    mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | locked_flags(target)
    if kind != "dev":
        flags |= MS_RDONLY | MS_NODEV
    mount(None, target, None, flags)


def locked_flags(path: str) -> int:
    have = os.statvfs(path).f_flag
    return sum(ms for st, ms in LOCKED_FLAGS.items() if have & st)


def mount_tmp(config: dict) -> None:
    """A fresh, size-limited /tmp. Binds already under /tmp (the runtime of a checkout in /tmp)
    are carried onto it, through descriptors opened before it covers them."""
    kept = [(os.open(target, os.O_PATH), target, kind) for _, target, kind in config["binds"]
            if target.startswith("/tmp/") and os.path.exists(target)]
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={config['tmp_bytes']},mode=1777")
    for fd, target, kind in kept:
        bind(f"/proc/self/fd/{fd}", target, kind)
        os.close(fd)


def mount_proc() -> None:
    """A /proc of this pid namespace only. Some hosts refuse it inside a user namespace
    (their own /proc is partly covered); the jail then has no /proc, which Python and torch survive."""
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        pass


def sandbox_env(config: dict) -> dict:
    return {
        **({"PYTHONPATH": ":".join(config["pythonpath"])} if config["pythonpath"] else {}),
        "PATH": SANDBOX_PATH,
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }


# --- a check's process: confined further before it serves the check -----------


def confine_check(config: dict) -> None:
    """Called in the zygote's freshly forked child; returns in the process that serves the check.

    The child makes new mount, pid, net, ipc and uts namespaces and forks the
    check's process, pid 1 there: when it dies, the kernel kills everything it
    started. The child stays behind only to pass on its exit status."""
    call("unshare", CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    check = os.fork()
    if check != 0:
        os.closerange(3, 1 << 16)  # the check's socket and output pipe must close when it dies
        for fd in (0, 1, 2):
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)
        exit_like(wait_for(check))
    die_with_parent()
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount_proc()
    mount_tmp(config)
    call("sethostname", b"check", 5)
    write_file("/proc/self/oom_score_adj", "1000", missing_ok=True)  # the memory killer takes checks first
    drop_capabilities(config["uids"] is not None)
    die_with_parent()  # again: changing credentials clears it
    limit(config["check_limits"])
    os.chdir("/submission")


def become(uid: int, gid: int, keep_groups: bool) -> None:
    if not keep_groups:
        os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def drop_capabilities(own_uid: bool) -> None:
    """No capability left and none to regain; with own_uid, also the check's own uid (CHECK_UID)."""
    for cap in range(64):  # the bounding set first: dropping from it takes a capability
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    if own_uid:
        become(CHECK_UID, CHECK_UID, keep_groups=False)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    call("capset", header, data)
    call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def limit(limits: dict) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


# --- small helpers --------------------------------------------------------------


def write_file(path: str, text: str, missing_ok: bool = False) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def wait_for(pid: int) -> int:
    """Reap every child (as pid 1 we inherit orphans) until pid itself ends; its raw status."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1 << 8
        if reaped == pid:
            return status


def exit_like(status: int) -> None:
    """End this process the way the one it waited for ended, so the zygote reports the truth."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught anyway
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def zygote(config: dict) -> None:
    """Inside the jail: the usual worker, with every check's process confined first."""
    from autograder.protocol import worker

    worker.main(["/submission"], confine=lambda: confine_check(config))


if __name__ == "__main__":
    role, config_text = sys.argv[1], sys.argv[2]
    {"outer": outer, "zygote": zygote}[role](json.loads(config_text))
