"""Image names as the CLI takes them: `name[:tag]`, `registry:5000/path/name:tag`, `sha256:<hex>`,
`name@sha256:<hex>`.

Local names are kept in Docker's familiar short form (`busybox:latest`, `team/app:v1`); pulling
expands them the way Docker does (distribution/reference): no registry host means Docker Hub,
and a single-component Hub name lives under `library/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
_NAME = re.compile(rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's distribution API is served


class ReferenceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RemoteReference:
    """An image in a registry: `registry/repository` plus a tag or a manifest digest."""

    registry: str  # host[:port] as written (docker.io for Docker Hub)
    repository: str  # library/busybox
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def familiar_name(self) -> str:
        """The name shown locally: `busybox`, `team/app`, `localhost:5000/app`."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    @property
    def manifest_ref(self) -> str:
        return self.digest or self.tag

    def __str__(self) -> str:
        return self.familiar_name + (f"@{self.digest}" if self.digest else f":{self.tag}")


def parse_remote(text: str) -> RemoteReference:
    """Docker's normalisation: `busybox` → docker.io/library/busybox:latest; the first path component
    is a registry host when it has a `.` or a `:`, or is `localhost`."""
    name, at, digest = text.partition("@")
    if at and not DIGEST.match(digest):
        raise ReferenceError(f"invalid digest in {text!r}: expected sha256:<64 hex digits>")
    tag = ""
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise ReferenceError(f"invalid tag in {text!r}: expected up to 128 of [A-Za-z0-9_.-]")
    if not _NAME.match(name):
        raise ReferenceError(f"invalid image name {text!r}: expected lowercase [a-z0-9._-] path components, "
                             "optionally behind a registry host")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return RemoteReference(registry, repository, tag or ("" if digest else "latest"), digest)


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
