"""Per-app event logs: what the leader did to an app and why (`clusterctl describe APP`).

One key per app holds its most recent events as JSON lines. The leader appends after every
evaluation that changed something and `drain` appends too, so an append is a compare-and-swap on
the key's revision, retried when another append got there first.
"""

from __future__ import annotations

import json
import time

from controlplane.etcd import EtcdClient
from controlplane.etcd import txn as t
from controlplane.state import keys

KEEP = 50


ATTEMPTS = 10


async def record(client: EtcdClient, app: str, messages: list[str]) -> None:
    if not messages:
        return
    key = keys.events(app)
    for _ in range(ATTEMPTS):
        existing = await client.get(key)
        lines = existing.value.decode().splitlines() if existing else []
        now = time.time_ns()
        lines += [json.dumps({"at": now, "message": message}) for message in messages]
        written = await client.txn([t.mod_revision(key, "==", existing.mod_revision if existing else 0)],
                                   [t.put(key, "\n".join(lines[-KEEP:]))])
        if written.succeeded:
            return


async def read(client: EtcdClient, app: str) -> list[tuple[int, str]]:
    existing = await client.get(keys.events(app))
    if existing is None:
        return []
    return [(entry["at"], entry["message"]) for entry in map(json.loads, existing.value.decode().splitlines())]
