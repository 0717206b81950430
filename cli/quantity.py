"""Parsing the quantities people type: `64Mi`, `512m`, `1g`, `0.5` CPUs, `8080:80/udp`."""

from __future__ import annotations

import re

# Every unit is binary, whatever its case: Docker's `64m` and Kubernetes' `64Mi` both mean 64 MiB.
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_PORT = re.compile(r"^(?:(\d+):)?(\d+)(?:/(tcp|udp))?$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])i?)?b?\s*$", re.IGNORECASE)


def parse_memory(text: str, flag: str = "--memory") -> int:
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"{flag}: {text!r} is not a memory size (examples: 64Mi, 512m, 1g, 1048576)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def parse_cpus(text: str, flag: str = "--cpus") -> int:
    """Returns thousandths of a CPU."""
    try:
        cpus = float(text)
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not a number of CPUs (examples: 0.5, 2)") from None
    millis = round(cpus * 1000)
    if millis < 1:
        raise ValueError(f"{flag}: {text!r} must be at least 0.001")
    return millis


def format_bytes(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value}B"


def parse_port(text: str) -> tuple[int, int, str]:
    """Docker's `HOST:CONTAINER[/PROTO]` (`PORT` publishes the same number on both sides):
    (host port, container port, protocol)."""
    match = _PORT.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} must be HOST_PORT:CONTAINER_PORT[/tcp|udp], e.g. 8080:80")
    host, container, protocol = match.groups()
    ports = int(host or container), int(container)
    if not all(1 <= port <= 65535 for port in ports):
        raise ValueError(f"{text!r}: ports are 1 to 65535")
    return ports[0], ports[1], protocol or "tcp"
