"""The agent's container records on disk: <state>/containers/<id>/container.json (write-then-rename),
and the files generated there for each container."""

from __future__ import annotations

import contextlib
import json
import os

from agent.containers.model import Container
from agent.network import plan

ETC_FILES = ("hostname", "hosts", "resolv.conf")  # generated per container, bind-mounted into /etc


class ContainerRecords:
    def __init__(self, state_dir: str) -> None:
        self.root = os.path.join(state_dir, "containers")
        self.trash = os.path.join(state_dir, "trash")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.trash, exist_ok=True)

    def discard(self, container_id: str) -> str:
        """Moves a removed container's directory out of the records in one rename; returns where."""
        target = os.path.join(self.trash, container_id)
        os.rename(self.directory(container_id), target)
        return target

    def discarded(self) -> list[str]:
        """Container ids whose directories still wait in the trash (after a crash mid-cleanup)."""
        return sorted(os.listdir(self.trash))

    def directory(self, container_id: str) -> str:
        return os.path.join(self.root, container_id)

    def save(self, container: Container) -> None:
        path = os.path.join(self.directory(container.id), "container.json")
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(container.to_json()))  # dumps: the C encoder (dump to a file is pure Python)
        os.replace(path + ".tmp", path)

    def write_etc_files(self, container: Container, address: str, nameserver: str) -> None:
        """/etc/hostname, /etc/hosts and /etc/resolv.conf of the container, bind-mounted: written at
        create (the spawned init binds them), and again in place at each start (a bridged
        container's address is known then, and may change): a bridged container finds its own
        name at its address, and asks the node's DNS server."""
        directory = self.directory(container.id)
        with open(os.path.join(directory, "hostname"), "w") as f:
            f.write(container.hostname + "\n")
        with open(os.path.join(directory, "hosts"), "w") as f:
            f.write(plan.hosts_file(container.hostname, address))
        resolv = ""
        with contextlib.suppress(OSError), open("/etc/resolv.conf") as host_resolv:
            resolv = host_resolv.read()
        with open(os.path.join(directory, "resolv.conf"), "w") as f:
            f.write(plan.resolv_conf(resolv, nameserver))

    def etc_binds(self, container_id: str) -> list[tuple[str, str, bool]]:
        """The generated files as the launch spec's binds: (source, destination, read-only)."""
        return [(os.path.join(self.directory(container_id), name), f"/etc/{name}", False) for name in ETC_FILES]

    def unrecorded(self) -> list[str]:
        """Container directories without a record: creates that an agent crash cut short."""
        return sorted(name for name in os.listdir(self.root)
                      if not os.path.exists(os.path.join(self.root, name, "container.json")))

    def load_all(self) -> list[Container]:
        found = []
        for name in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, name, "container.json")
            if os.path.exists(path):
                with open(path) as f:
                    found.append(Container.from_json(json.load(f)))
        return found

    def read_supervisor_record(self, container_id: str, name: str) -> dict[str, object] | None:
        """run.json / exit.json written by the supervisor (see agent/supervisor/records.py)."""
        try:
            with open(os.path.join(self.directory(container_id), name)) as f:
                data: dict[str, object] = json.load(f)
                return data
        except (FileNotFoundError, ValueError):
            return None
