"""Output: human tables by default, `-o json|yaml` for machines."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message


def to_data(message: Message) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict  # imported when needed: CLI start-up time

    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def emit(items: Sequence[Message] | Message, fmt: str) -> None:
    data: Any = [to_data(m) for m in items] if isinstance(items, Sequence) else to_data(items)
    if fmt == "yaml":
        import yaml  # imported when needed: CLI start-up time

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        print("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def since(timestamp_seconds: float) -> str:
    return ago(time.time() - timestamp_seconds)
