"""`python -S -m agent.supervisor --state-dir DIR --cgroup-parent NAME --socket PATH`."""

import argparse
import contextlib
import gc
import os
import sys

from agent.cgroups import manager_for
from agent.supervisor.server import Supervisor
from agent.supervisor.zygote import InitPool, Zygote


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shoal-supervisor")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--cgroup-parent", required=True)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args(argv)
    os.umask(0o022)
    gc.freeze()  # keep the heap's pages shared with forked children (fewer copy-on-write faults)
    cgroups = manager_for(args.cgroup_parent)
    pool = InitPool(Zygote(cgroups), cgroups, spares=os.path.join(args.state_dir, "warm"))
    supervisor = Supervisor(args.state_dir, args.cgroup_parent, cgroups, pool)
    pid_file = os.path.join(args.state_dir, "supervisor.pid")
    with open(pid_file + ".tmp", "w") as f:  # renamed into place: a reader never sees it empty
        f.write(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
    try:
        supervisor.serve(args.socket)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)
    sys.exit(0)


main()
