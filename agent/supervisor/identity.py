"""Who the container's process runs as: user and groups from the image, capabilities, no_new_privs.

The last steps before execve, shared by a container's init and by exec'd processes.
References: capabilities(7), prctl(2), setgroups(2); Docker's default capability set.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from agent.supervisor import syscalls as sc

# Docker's default capabilities (capability numbers from linux/capability.h).
DEFAULT_CAPABILITIES = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
    "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
}
DEFAULT_CAP_MASK = sum(1 << bit for bit in DEFAULT_CAPABILITIES.values())


class UserError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _entries(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []


def resolve_user(user: str, etc: str = "/etc") -> Identity:
    """Resolves `user[:group]` (names or numbers) the way Docker does, from the image's files."""
    name, _, group = (user or "0").partition(":")
    passwd = _entries(os.path.join(etc, "passwd"))
    groups = _entries(os.path.join(etc, "group"))
    uid, gid, home, username = None, 0, "/", None
    for entry in passwd:
        if len(entry) >= 6 and (entry[0] == name or entry[2] == name):
            uid, gid, home, username = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
            break
    if uid is None:
        if not name.isdigit():
            raise UserError(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(name)
    if group:
        for entry in groups:
            if len(entry) >= 3 and (entry[0] == group or entry[2] == group):
                gid = int(entry[2])
                break
        else:
            if not group.isdigit():
                raise UserError(f"unable to find group {group}: no matching entries in group file")
            gid = int(group)
    extra = tuple(sorted({int(e[2]) for e in groups
                          if len(e) >= 4 and username and username in e[3].split(",") and e[2].isdigit()}))
    return Identity(uid=uid, gid=gid, groups=tuple(g for g in extra if g != gid), home=home)


def limit_bounding_set() -> None:
    """Cuts the bounding set to Docker's defaults. The bounding set only limits what execve
    grants, so the init keeps its own capabilities until `switch_identity` (it still configures
    eth0 and unshares its cgroup namespace after this)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        if not DEFAULT_CAP_MASK & (1 << cap):
            sc.prctl(sc.PR_CAPBSET_DROP, cap)


def switch_identity(identity: Identity) -> None:
    """no_new_privs on, then the user switch; for root the permitted, effective and inheritable
    sets are cut with capset. After `limit_bounding_set`: dropping from the bounding set needs
    CAP_SETPCAP, which setuid to a non-root user takes away."""
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)
    if identity.uid == 0:
        sc.capset(DEFAULT_CAP_MASK, DEFAULT_CAP_MASK, 0)


@dataclass(frozen=True, slots=True)
class Command:
    """A process resolved against the container's files, ready for execve."""

    path: str  # the executable, found as execvpe would find it
    argv: list[str]
    environment: dict[str, str]
    identity: Identity


def prepare_command(argv: list[str], env: list[str], cwd: str, user: str) -> Command:
    """Every step before execve that depends on the image (user, working dir, executable), so that
    an init does them before it waits to be started: a start then has only the identity switch
    and execve left, and whatever is wrong with the image is still reported by the start. The
    bounding set is cut apart (`limit_bounding_set`): a pooled init does it before it has a
    container."""
    identity = resolve_user(user)
    environment = {key: value for key, _, value in (item.partition("=") for item in env)}
    environment.setdefault("HOME", identity.home)
    environment.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    return Command(find_executable(argv[0], environment), argv, environment, identity)


def find_executable(command: str, environment: dict[str, str]) -> str:
    """As execvpe searches: a name with a slash as it is, any other along the environment's PATH;
    the first regular file with an execute bit is taken (as Go's LookPath, which runc uses).
    Raises what execvpe would: FileNotFoundError, or PermissionError when only files that cannot
    be executed were found."""
    candidates = [command] if "/" in command else \
        [os.path.join(directory, command) for directory in os.get_exec_path(environment)]
    refused = ""
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        if os.path.exists(path):
            refused = path
    if refused:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), refused)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)


def become(command: Command) -> None:
    """Never returns: switches to the command's identity and execs it."""
    switch_identity(command.identity)
    os.execve(command.path, command.argv, command.environment)


def exec_command(argv: list[str], env: list[str], cwd: str, user: str) -> None:
    """Becomes the container's process: working dir, identity, then execve (PATH searched in env)."""
    command = prepare_command(argv, env, cwd, user)
    limit_bounding_set()
    become(command)
