"""Per-app event logs: what the leader did to an app and why (`clusterctl describe APP`).

One key per app holds its most recent events as JSON lines; only the leader writes them, once
per evaluation that changed something, so there is no write contention.
"""

from __future__ import annotations

import json
import time

from controlplane.etcd import EtcdClient
from controlplane.state import keys

KEEP = 50


async def record(client: EtcdClient, app: str, messages: list[str]) -> None:
    if not messages:
        return
    existing = await client.get(keys.events(app))
    lines = existing.value.decode().splitlines() if existing else []
    now = time.time_ns()
    lines += [json.dumps({"at": now, "message": message}) for message in messages]
    await client.put(keys.events(app), "\n".join(lines[-KEEP:]))


async def read(client: EtcdClient, app: str) -> list[tuple[int, str]]:
    existing = await client.get(keys.events(app))
    if existing is None:
        return []
    return [(entry["at"], entry["message"]) for entry in map(json.loads, existing.value.decode().splitlines())]
