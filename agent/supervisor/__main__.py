"""`python -S -m agent.supervisor --state-dir DIR --cgroup-parent NAME --socket PATH`."""

import gc

from agent.supervisor.server import main

gc.freeze()  # keep the heap's pages shared with forked children (fewer copy-on-write faults)
main()
