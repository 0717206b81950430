from __future__ import annotations

import base64
import json
import os

import pytest

from agent.errors import InvalidSpec
from agent.images.reference import ReferenceError, parse_remote
from agent.images.registry import Credentials, is_loopback
from agent.images.service import RegistrySettings
from cli.registry import registry_of

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest", "shown"), [
    ("busybox", "docker.io", "library/busybox", "latest", "", "busybox:latest"),
    ("library/busybox:1.36", "docker.io", "library/busybox", "1.36", "", "busybox:1.36"),
    ("team/app:v2", "docker.io", "team/app", "v2", "", "team/app:v2"),
    ("docker.io/team/app", "docker.io", "team/app", "latest", "", "team/app:latest"),
    (f"ghcr.io/org/app@{DIGEST}", "ghcr.io", "org/app", "", DIGEST, f"ghcr.io/org/app@{DIGEST}"),
    ("localhost:5000/app:v1", "localhost:5000", "app", "v1", "", "localhost:5000/app:v1"),
    ("localhost/app", "localhost", "app", "latest", "", "localhost/app:latest"),
    ("127.0.0.1:5000/a/b/c:x", "127.0.0.1:5000", "a/b/c", "x", "", "127.0.0.1:5000/a/b/c:x"),
])
def test_references_are_normalised_as_docker_does(text: str, registry: str, repository: str, tag: str,
                                                  digest: str, shown: str) -> None:
    ref = parse_remote(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, str(ref)) == (registry, repository, tag, digest, shown)
    assert registry_of(text) == registry  # the CLI picks the same registry's credentials


@pytest.mark.parametrize("text", ["Busybox", "busybox:bad tag", "app@sha256:short", "a//b", ""])
def test_bad_references_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ReferenceError, match="invalid"):
        parse_remote(text)


def test_docker_hub_is_reached_at_its_api_host() -> None:
    assert parse_remote("busybox").api_host == "registry-1.docker.io"
    assert parse_remote("quay.io/x/y").api_host == "quay.io"


@pytest.mark.parametrize(("host", "loopback"), [("localhost:5000", True), ("127.0.0.1", True), ("127.8.0.1:80", True),
                                                ("[::1]:5000", True), ("registry.example:5000", False),
                                                ("10.0.0.1:5000", False)])
def test_loopback_registries_may_use_plain_http(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_agent_credentials_come_from_a_docker_config_file(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "config.json")
    with open(path, "w") as f:
        json.dump({"auths": {"reg.example:5000": {"auth": base64.b64encode(b"bob:pw:with:colons").decode()},
                             "https://index.docker.io/v1/": {"username": "hub", "password": "hubpw"}}}, f)
    settings = RegistrySettings(auth_file=path)
    assert settings.credentials("reg.example:5000") == Credentials("bob", "pw:with:colons")
    assert settings.credentials("docker.io") == Credentials("hub", "hubpw")
    assert settings.credentials("other.example") is None
    with open(path, "w") as f:
        f.write("{not json")
    with pytest.raises(InvalidSpec, match="--registry-auth-file"):
        settings.credentials("reg.example:5000")
