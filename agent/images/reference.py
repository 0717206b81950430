"""Image names as the CLI takes them: `name[:tag]`, `registry:5000/path/name:tag`, `sha256:<hex>`.

Local names are kept in the familiar short form (`busybox:latest`); registry defaults (Docker Hub,
`library/`) belong to pulling, which comes with the registry issue.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
_NAME = re.compile(rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class ReferenceError(ValueError):
    pass


def normalize(reference: str) -> str:
    """Returns `name:tag` (tag `latest` when absent) or raises ReferenceError saying what is wrong."""
    name, tag = split(reference)
    return f"{name}:{tag}"


def split(reference: str) -> tuple[str, str]:
    last_slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > last_slash:
        name, tag = reference[:colon], reference[colon + 1:]
    else:
        name, tag = reference, "latest"
    if not _NAME.match(name):
        raise ReferenceError(f"invalid image name {reference!r}: expected lowercase [a-z0-9._-] path components, "
                             "optionally behind a registry host")
    if not _TAG.match(tag):
        raise ReferenceError(f"invalid tag in {reference!r}: expected up to 128 of [A-Za-z0-9_.-]")
    return name, tag
