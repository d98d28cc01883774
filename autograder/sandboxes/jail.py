"""The inside of the namespace sandbox: kernel calls that build the jail, run
by processes the grader starts (see namespace.py for the process model).

This file runs as a script, never imported by the grader, and uses only the
standard library: `python jail.py outer CONFIG` builds a worker's jail and
starts the template in it; inside the jail the template runs as
`python /grader/jail.py template CONFIG`, each zygote it forks enters its
submission (`enter_submission`), and every check's process confines
itself further with `CheckJail` before it imports student code: its own
namespaces, uid, rlimits, a fresh session keyring, and last a seccomp filter
(`seccomp_program`: namespace.py says what it refuses and why).

CONFIG is JSON from the grader: binds ([host path, jail path, kind]), links,
devices, the host uids of the slot (as root), sizes and limits, and whether
libseccomp is there to build the filter with.
"""

from __future__ import annotations

import ctypes
import errno
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
CLONE_NEWCGROUP = 0x02000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
SYS_PIDFD_OPEN = {"x86_64": 434, "aarch64": 434}
KEYCTL_JOIN_SESSION_KEYRING = 1
# statvfs flags that a mount in a user namespace must keep when remounted (they are locked).
LOCKED_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC, os.ST_RDONLY: MS_RDONLY}
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
CHECK_UID = 1000  # a check's uid inside the jail (when the grader runs as root)

# The seccomp filter of a check's process (namespace.py's docstring says why each is refused).
# Each is refused with EPERM, so Python raises an OSError the student can read; unknown names
# (iopl on aarch64) are skipped by libseccomp.
SECCOMP_REFUSED = (
    "add_key", "request_key", "keyctl",
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "modify_ldt", "iopl", "ioperm", "syslog", "uselib", "lookup_dcookie",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "settimeofday", "clock_settime",
)
CLONE_NAMESPACES = (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET)
# personality(2) flags refused: they switch off address randomisation or map page zero or make
# data executable. 0xffffffff only asks for the current personality, and stays allowed.
PERSONALITY_REFUSED = (0x0040000, 0x0100000, 0x0200000, 0x0400000, 0x0800000, 0x8000000)
PERSONALITY_QUERY_BIT = 1 << 31  # set only in the query 0xffffffff (no flag is that high)
SCMP_ACT_ALLOW, SCMP_ACT_ERRNO = 0x7FFF0000, 0x00050000  # libseccomp's actions (ERRNO | errno)
SCMP_FLTATR_ACT_BADARCH, SCMP_CMP_MASKED_EQ, NR_SCMP_ERROR = 2, 7, -1
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
BPF_INSTRUCTION_BYTES = 8  # struct sock_filter

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


# --- the outer process: builds the jail, then waits for the template ---------


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
        become(0, 0, groups=None)
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
    """pid 1 of the jail: build the root file system, start the template, reap orphans."""
    die_with_parent()
    call("unshare", CLONE_NEWNS)  # ours alone: the pivot must not move outer's root too
    build_root(config)
    if as_root:
        call("unshare", CLONE_NEWUSER)
        os.write(tell_outer, b"u")
        if os.read(from_outer, 1) != b"m":
            os._exit(1)
        # The staging folder is root's and the check gid's, 0750 (slots.staging_folder): the template,
        # jail gid 0, reads it through that group, as supplementary group.
        become(0, 0, groups=[CHECK_UID])
        die_with_parent()  # again: changing credentials clears it
        # Namespaces owned by the new user namespace: the zygotes may then make their own and the checks'.
        call("unshare", CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    os.close(tell_outer)
    os.close(from_outer)
    call("sethostname", b"sandbox", 7)
    limit(config["zygote_limits"])
    # The template is pid 1 of a pid namespace owned by the jail's user namespace: its zygotes may
    # then go back into it before making each check's own (CheckJail.before_fork).
    call("unshare", CLONE_NEWPID)
    warm = os.fork()
    if warm == 0:
        try:
            die_with_parent()
            call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            os.chdir("/")
            os.execve(config["python"], [config["python"], "-s", "/grader/jail.py", "template", json.dumps(config)], sandbox_env(config))
        except BaseException as exc:
            print(f"autograder jail: cannot start the worker: {exc}", file=sys.stderr)
        os._exit(1)
    exit_like(wait_for(warm))


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
    os.makedirs("/submission")  # where each zygote binds its own submission (enter_submission)
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


class CheckJail:
    """How a zygote's child is confined before it serves a check.

    before_fork, in the zygote: the next child is made pid 1 of a new pid
    namespace (the zygote goes back to its own pid namespace, then unshares a
    new one for its children): when the check's process dies, the kernel kills
    everything it started. Then, called in the child: new mount, net, ipc and
    uts namespaces, a fresh /tmp and /proc, no capability, the check's uid, a
    keyring of its own, rlimits and, last (it refuses mount and keyctl, used
    before), the seccomp program, when there is one."""

    def __init__(self, config: dict, seccomp: bytes | None):
        self.config, self.seccomp = config, seccomp
        self.pid_namespace: int | None = None  # the zygote's own, opened in the zygote

    def before_fork(self) -> None:
        if self.pid_namespace is None:
            self.pid_namespace = own_pid_namespace()
        call("setns", self.pid_namespace, CLONE_NEWPID)
        call("unshare", CLONE_NEWPID)

    def __call__(self) -> None:
        os.close(self.pid_namespace)  # the zygote's: never a check's
        call("unshare", CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
        die_with_parent()
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount_proc()
        mount_tmp(self.config)
        call("sethostname", b"check", 5)
        write_file("/proc/self/oom_score_adj", "1000", missing_ok=True)  # the memory killer takes checks first
        drop_capabilities(self.config["uids"] is not None)
        die_with_parent()  # again: changing credentials clears it
        join_new_session_keyring()
        limit(self.config["check_limits"])
        os.chdir("/submission")
        if self.seccomp is not None:
            install_seccomp(self.seccomp)


def own_pid_namespace() -> int:
    """A descriptor of this process's pid namespace: through the jail's /proc, or, where the host
    refused the jail one, a pidfd of pid 1 (the template, whose namespace it is: be_init)."""
    try:
        return os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return call("syscall", SYS_PIDFD_OPEN[os.uname().machine], 1, 0)


def join_new_session_keyring() -> None:
    """An anonymous session keyring of this check's alone, so @s is nothing an earlier check wrote.
    (@u, the uid's user keyring, is every check's: only the seccomp filter keeps them out of it.)"""
    if libc.syscall(SYS_KEYCTL[os.uname().machine], KEYCTL_JOIN_SESSION_KEYRING, None) == -1:
        number = ctypes.get_errno()
        if number != errno.ENOSYS:  # a kernel without keyrings has nothing to share
            raise OSError(number, f"keyctl(KEYCTL_JOIN_SESSION_KEYRING): {os.strerror(number)}")


class ArgumentTest(ctypes.Structure):  # libseccomp's struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class FilterProgram(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_program() -> bytes:
    """The checks' seccomp filter as a BPF program, built once in the template with libseccomp
    (which knows every architecture's syscall numbers): everything is allowed but SECCOMP_REFUSED,
    clone with a namespace flag, clone3 (ENOSYS: its flags are out of a filter's sight, and the C
    library then falls back to clone), personality with a flag of PERSONALITY_REFUSED, and
    syscalls of another architecture (i386 or x32 on x86_64)."""
    seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgumentTest)]
    seccomp.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    seccomp.seccomp_release.argtypes = [ctypes.c_void_p]
    refuse = SCMP_ACT_ERRNO | errno.EPERM

    def succeeded(result: int, what: str) -> None:
        if result < 0:
            raise OSError(-result, f"libseccomp: {what}: {os.strerror(-result)}")

    def rule(action: int, name: str, mask: int = 0, value: int = 0) -> None:
        """action for syscall name when its first argument & mask == value (always, with mask 0)."""
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number != NR_SCMP_ERROR:
            test = (ArgumentTest * 1)(ArgumentTest(0, SCMP_CMP_MASKED_EQ, mask, value))
            succeeded(seccomp.seccomp_rule_add_array(context, action, number, 1 if mask else 0, test), f"a rule for {name}")

    context = seccomp.seccomp_init(SCMP_ACT_ALLOW)
    if not context:
        raise OSError("libseccomp: seccomp_init failed")
    try:
        succeeded(seccomp.seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, refuse), "the action for other architectures")
        for name in SECCOMP_REFUSED:
            rule(refuse, name)
        for flag in CLONE_NAMESPACES:
            rule(refuse, "clone", flag, flag)
        rule(SCMP_ACT_ERRNO | errno.ENOSYS, "clone3")
        # libseccomp tests an argument once per rule, and rules are alternatives: a refused flag
        # without the query bit, or the query bit with any other bit missing (not 0xffffffff).
        for flag in PERSONALITY_REFUSED:
            rule(refuse, "personality", flag | PERSONALITY_QUERY_BIT, flag)
        for bit in range(31):
            rule(refuse, "personality", PERSONALITY_QUERY_BIT | 1 << bit, PERSONALITY_QUERY_BIT)
        memory = os.memfd_create("seccomp")
        try:
            succeeded(seccomp.seccomp_export_bpf(context, memory), "exporting the program")
            return os.pread(memory, os.fstat(memory).st_size, 0)
        finally:
            os.close(memory)
    finally:
        seccomp.seccomp_release(context)


def install_seccomp(program: bytes) -> None:
    """Filter this process's syscalls (and its threads' and children's) with program; no_new_privs is set."""
    code = ctypes.create_string_buffer(program, len(program))
    header = FilterProgram(len(program) // BPF_INSTRUCTION_BYTES, ctypes.addressof(code))
    call("prctl", PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(header), 0, 0)


def become(uid: int, gid: int, groups: list[int] | None) -> None:
    """groups: the supplementary groups to have, or None to keep them (unprivileged: setgroups is denied)."""
    if groups is not None:
        os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def drop_capabilities(own_uid: bool) -> None:
    """No capability left and none to regain; with own_uid, also the check's own uid (CHECK_UID)."""
    for cap in range(64):  # the bounding set first: dropping from it takes a capability
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    if own_uid:
        become(CHECK_UID, CHECK_UID, groups=[])
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


def template(config: dict) -> None:
    """Inside the jail: the usual worker template, each zygote entering its submission alone and every
    check's process confined first."""
    from autograder.protocol import TEMPLATE_FLAG, worker

    seccomp = seccomp_program() if config["seccomp"] else None
    worker.main([TEMPLATE_FLAG], confine=CheckJail(config, seccomp), enter=enter_submission)


def enter_submission(name: str, uid) -> str:
    """In a new zygote: a mount namespace of its own where /submission is the staged copy `name`
    (a folder of /staging) and /staging is covered by an empty read-only tmpfs, so neither it nor
    its checks see another one. (Covered, not unmounted: as root, the jail's mounts are locked.)"""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a staged submission's name: {name!r:.80}")
    call("unshare", CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    bind(f"/staging/{name}", "/submission", "ro")
    mount("tmpfs", "/staging", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")
    os.chdir("/submission")
    return "/submission"


if __name__ == "__main__":
    role, config_text = sys.argv[1], sys.argv[2]
    {"outer": outer, "template": template}[role](json.loads(config_text))
