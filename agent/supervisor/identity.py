"""Who the container's process runs as: user and groups from the image, capabilities, no_new_privs.

The last steps before execve, shared by a container's init and by exec'd processes.
References: capabilities(7), prctl(2), setgroups(2); Docker's default capability set.
"""

from __future__ import annotations

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


def drop_privileges(identity: Identity) -> None:
    """Bounding set reduced to Docker's defaults, no_new_privs on, then the user switch.

    Order matters: dropping from the bounding set needs CAP_SETPCAP, which setuid to a non-root
    user takes away; for root the permitted/effective/inheritable sets are cut with capset.
    """
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        if not DEFAULT_CAP_MASK & (1 << cap):
            sc.prctl(sc.PR_CAPBSET_DROP, cap)
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)
    if identity.uid == 0:
        sc.capset(DEFAULT_CAP_MASK, DEFAULT_CAP_MASK, 0)


def exec_command(argv: list[str], env: list[str], cwd: str, user: str) -> None:
    """Becomes the container's process: working dir, identity, then execve (PATH searched in env)."""
    identity = resolve_user(user)
    environment = {key: value for key, _, value in (item.partition("=") for item in env)}
    environment.setdefault("HOME", identity.home)
    environment.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    drop_privileges(identity)
    os.execvpe(argv[0], argv, environment)
