"""What the state directory's filesystem costs: ext4 without a journal makes container churn slow.

Without a journal, ext4's inode allocator skips every recently deleted inode, reading its slot
in the inode table to tell (fs/ext4/ialloc.c, `recently_deleted`). Containers create and delete
a dozen inodes each (their directories, /etc files and records, and the overlay's checks of its
work directory at every mount), so under churn each new inode costs a walk over the last few
seconds' deletions: on this project's VM, whose root filesystem has no journal, creating a
container's directories took 1 to 2 ms and an overlay mount 4 to 5 ms, against about 0.3 ms on a
journaled ext4 or a tmpfs, and a lifecycle took 22 to 35 ms against 14 to 15 ms.
"""

from __future__ import annotations

import os


def journal_less_ext4(path: str) -> str:
    """The block device's name when path lies on ext4 without a journal, else ""."""
    device = os.stat(path).st_dev
    name = os.path.basename(os.path.realpath(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}"))
    try:
        with open(f"/sys/fs/ext4/{name}/journal_task") as f:
            return name if f.read().strip() == "<none>" else ""
    except OSError:  # not ext4 (or no such sysfs file): nothing to say
        return ""


def warning(state_dir: str) -> str:
    """What to tell the operator about the state directory's filesystem, if anything."""
    device = journal_less_ext4(state_dir)
    if not device:
        return ""
    return (f"the state directory {state_dir} is on ext4 without a journal ({device}): every file "
            "ext4 creates there then walks the inodes deleted in the last seconds, which makes "
            "creating and starting containers several times slower under churn; prefer a journaled "
            "filesystem (see README, Operations)")
