"""Pulling from a real registry: Debian's docker-registry (the reference implementation of the
distribution API) on loopback, with images pushed by skopeo, a client nobody here wrote."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator

import pytest
from shoal.controlplane.v1 import app_service_pb2 as apb
from shoal.controlplane.v1 import app_service_pb2_grpc
from shoal.controlplane.v1 import apps_pb2 as pb

from cli.busybox_image import ARCH, Entry, busybox_entries, layer_tar, write_oci_layout
from tests.integration.conftest import ControlPlane
from tests.integration.harness import ENV, AgentProcess, eventually, free_port
from tests.integration.registry import (
    FaultyProxy,
    Registry,
    make_tls,
    start_registry,
    stop_registry,
    write_layout,
)
from tests.integration.test_cluster_member import member  # noqa: F401  (the fixture)
from tests.integration.token_server import TokenServer

if os.geteuid() != 0:
    pytest.skip("the integration level needs root", allow_module_level=True)
if not (shutil.which("docker-registry") and shutil.which("skopeo") and shutil.which("htpasswd")):
    pytest.skip("needs docker-registry, skopeo and htpasswd (apt-get install docker-registry skopeo "
                "apache2-utils)", allow_module_level=True)


@pytest.fixture(scope="module")
def registry(test_root: str) -> Iterator[Registry]:
    started = start_registry(os.path.join(test_root, "registry"))
    try:
        yield started
    finally:
        stop_registry(started)


def _extra_layer(name: str, size: int) -> bytes:
    return layer_tar([Entry("data", kind=tarfile.DIRTYPE, mode=0o755), Entry(f"data/{name}", os.urandom(size))])


def test_pull_and_run_an_image_pushed_by_skopeo(agent: AgentProcess, registry: Registry, test_root: str) -> None:
    layout = os.path.join(test_root, "layout-multi")
    write_layout(layout, [layer_tar(busybox_entries()), *(_extra_layer(f"l{i}", 64 << 10) for i in range(3))],
                 platforms=("s390x" if ARCH != "s390x" else "arm64", ARCH))
    registry.push_layout(layout, "team/tool:v1", "--all")
    image = f"{registry.address}/team/tool:v1"
    pulled = agent.cli("image", "pull", image)
    assert pulled.code == 0, pulled.err
    # The busybox layer is the one busybox:test already brought (same blob): only the other three come.
    assert pulled.out.count("Pull complete") == 3 and f"Pulled {image}" in pulled.out
    ran = agent.cli("run", "--rm", image, "sh", "-c", "echo $PLATFORM; ls /data")
    assert (ran.code, ran.out) == (0, f"{ARCH}\nl0\nl1\nl2\n"), ran.err  # this host's platform, every layer

    again = agent.cli("image", "pull", image)  # nothing new to fetch
    assert again.code == 0 and "Pull complete" not in again.out
    [listed] = [i for i in agent.cli_json("images") if image in i["repo_tags"]]  # type: ignore[union-attr]
    by_digest = agent.cli("run", "--rm", f"{registry.address}/team/tool@{listed['manifest_digest']}", "true")
    assert by_digest.code == 0, by_digest.err
    assert agent.cli("image", "rm", image).code == 0


def test_registry_errors_are_clear_and_leave_the_store_as_it_was(agent: AgentProcess, registry: Registry,
                                                                  test_root: str) -> None:
    before = agent.cli_json("images")
    blobs = os.path.join(agent.state_dir, "images", "blobs")
    blobs_before = sorted(os.listdir(blobs))

    missing = agent.cli("image", "pull", f"{registry.address}/team/none:v1")
    assert missing.code == 1 and "answered 404" in missing.err and "MANIFEST_UNKNOWN" in missing.err

    layout = os.path.join(test_root, "layout-tampered")
    big = _extra_layer("big", 256 << 10)
    write_layout(layout, [layer_tar(busybox_entries()), big])
    registry.push_layout(layout, "team/tampered:v1")
    tampered = registry.blob_path("sha256:" + hashlib.sha256(gzip.compress(big, mtime=0)).hexdigest())
    with open(tampered, "r+b") as f:
        f.seek(1000)
        f.write(b"\0" * 16)
    corrupt = agent.cli("image", "pull", f"{registry.address}/team/tampered:v1")
    assert corrupt.code == 1 and "does not match its digest" in corrupt.err, corrupt.err

    gone = f"127.0.0.1:{free_port()}"
    unreachable = agent.cli("image", "pull", f"{gone}/team/tool:v1")
    assert unreachable.code == 1 and f"cannot reach registry {gone}" in unreachable.err
    bad = agent.cli("image", "pull", "Not/A/Valid:Name")
    assert bad.code == 1 and "invalid image name" in bad.err

    assert agent.cli_json("images") == before
    assert sorted(os.listdir(blobs)) == blobs_before  # no partial or unverified blob stayed
    assert not [n for n in os.listdir(os.path.join(agent.state_dir, "images", "layers")) if n.startswith(".tmp")]


def test_basic_auth_with_credentials_from_registry_login(agent: AgentProcess, test_root: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.path.join(test_root, "registry-auth")
    os.makedirs(root, exist_ok=True)
    users = os.path.join(root, "htpasswd")
    subprocess.run(["htpasswd", "-Bbc", users, "alice", "s3cret"], check=True, capture_output=True)
    private = start_registry(root, users=users)
    monkeypatch.setitem(ENV, "DOCKER_CONFIG", os.path.join(root, "docker"))  # where registry login writes
    try:
        layout = os.path.join(root, "layout")
        write_layout(layout, [layer_tar(busybox_entries())], env="SECRET=yes")
        private.push_layout(layout, "private/app:v1", "--dest-creds", "alice:s3cret")
        image = f"{private.address}/private/app:v1"
        anonymous = agent.cli("image", "pull", image)
        assert anonymous.code == 1 and f"registry {private.address} requires a login" in anonymous.err

        assert agent.cli("registry", "login", private.address, "-u", "alice", "--password-stdin",
                         stdin=b"wrong\n").code == 0
        refused = agent.cli("image", "pull", image)
        assert refused.code == 1 and "401" in refused.err and "access denied" in refused.err

        logged_in = agent.cli("registry", "login", private.address, "-u", "alice", "--password-stdin",
                              stdin=b"s3cret\n")
        assert logged_in.code == 0 and "stored" in logged_in.out
        with open(os.path.join(root, "docker", "config.json")) as f:
            assert private.address in json.load(f)["auths"]
        assert os.stat(os.path.join(root, "docker", "config.json")).st_mode & 0o777 == 0o600
        pulled = agent.cli("image", "pull", image)
        assert pulled.code == 0, pulled.err
        assert agent.cli("run", "--rm", image, "sh", "-c", "echo $SECRET").out == "yes\n"
        assert agent.cli("registry", "logout", private.address).code == 0
        assert agent.cli("image", "rm", image).code == 0
    finally:
        stop_registry(private)


def test_bearer_token_flow_against_a_token_server(agent: AgentProcess, test_root: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.path.join(test_root, "registry-token")
    tokens = TokenServer(os.path.join(root, "token"), users={"bob": "hunter2"})
    private = start_registry(root, auth=tokens.registry_auth())
    monkeypatch.setitem(ENV, "DOCKER_CONFIG", os.path.join(root, "docker"))
    try:
        layout = os.path.join(root, "layout")
        write_layout(layout, [layer_tar(busybox_entries())], env="TOKEN=ok")
        private.push_layout(layout, "team/sealed:v1", "--dest-creds", "bob:hunter2")
        image = f"{private.address}/team/sealed:v1"
        anonymous = agent.cli("image", "pull", image)
        assert anonymous.code == 1 and "access denied" in anonymous.err
        assert ("", "repository:team/sealed:pull") in tokens.requests  # an anonymous token was asked for
        assert agent.cli("registry", "login", private.address, "-u", "bob", "--password-stdin",
                         stdin=b"hunter2\n").code == 0
        pulled = agent.cli("image", "pull", image)
        assert pulled.code == 0, pulled.err
        assert ("bob", "repository:team/sealed:pull") in tokens.requests
        assert agent.cli("run", "--rm", image, "sh", "-c", "echo $TOKEN").out == "ok\n"
        assert agent.cli("image", "rm", image).code == 0
    finally:
        stop_registry(private)
        tokens.close()


def test_agents_pull_on_demand_per_the_apps_pull_policy(member: AgentProcess, controlplane: ControlPlane,  # noqa: F811
                                                         registry: Registry, test_root: str) -> None:
    layout = os.path.join(test_root, "layout-on-demand")
    write_layout(layout, [layer_tar(busybox_entries()), _extra_layer("payload", 32 << 10)], env="FROM=registry")
    registry.push_layout(layout, "team/served:v1")
    image = f"{registry.address}/team/served:v1"
    apps = app_service_pb2_grpc.AppsStub(controlplane.channel)

    def replicas(app: str) -> list[object]:
        return list(apps.ListReplicas(apb.ListReplicasRequest(app=app)).replicas)

    def deploy(name: str, ref: str, policy: str) -> None:
        spec = pb.AppSpec(name=name, image=ref, args=["sleep", "600"], replicas=1, pull_policy=policy,
                          restart=pb.AppRestartPolicy(kind=pb.AppRestartPolicy.KIND_ALWAYS))
        apps.ApplyApps(apb.ApplyAppsRequest(apps=[spec]))

    deploy("never", image, "never")  # not in the store, and not to be pulled: fails saying so
    eventually(lambda: [r.state for r in replicas("never")] == ["failed"])  # type: ignore[attr-defined]
    assert "not found" in replicas("never")[0].error  # type: ignore[attr-defined]

    deploy("served", image, "")  # if-not-present: pulled by the agent, then run
    eventually(lambda: [r.state for r in replicas("served")] == ["running"], timeout=30)  # type: ignore[attr-defined]
    assert member.cli("exec", "served.0", "sh", "-c", "echo $FROM; ls /data").out == "registry\npayload\n"

    deploy("absent", f"{registry.address}/team/served:v9", "always")  # the registry's reason, on the replica
    eventually(lambda: [r.state for r in replicas("absent")] == ["failed"])  # type: ignore[attr-defined]
    assert "MANIFEST_UNKNOWN" in replicas("absent")[0].error  # type: ignore[attr-defined]
    for name in ("never", "served", "absent"):
        apps.DeleteApp(apb.DeleteAppRequest(name=name))
    eventually(lambda: member.cli_json("ps", "-a") == [])


def test_push_is_read_by_skopeo_and_pulled_back(agent: AgentProcess, registry: Registry, test_root: str) -> None:
    archive = os.path.join(test_root, "big.tar")
    big = _extra_layer("big", (8 << 20) + 4096)  # over one upload chunk: sent in PATCHes
    write_oci_layout(archive, [layer_tar(busybox_entries()), big], config={"Env": ["ORIGIN=shoal"]}, name="big:v1")
    assert agent.cli("image", "import", archive).code == 0
    target = f"{registry.address}/shoal/pushed:v1"
    assert agent.cli("image", "tag", "big:v1", target).code == 0
    pushed = agent.cli("image", "push", target)
    assert pushed.code == 0, pushed.err
    digest = pushed.out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    [record] = [i for i in agent.cli_json("images") if target in i["repo_tags"]]  # type: ignore[union-attr]
    assert digest == record["manifest_digest"]  # the manifest went byte for byte

    inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"],
                               capture_output=True, text=True, timeout=60)
    assert inspected.returncode == 0, inspected.stderr
    facts = json.loads(inspected.stdout)
    assert facts["Digest"] == digest and len(facts["Layers"]) == 2 and "ORIGIN=shoal" in facts["Env"]
    copied = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{target}",
                             f"oci:{os.path.join(test_root, 'skopeo-copy')}:v1"], capture_output=True, text=True,
                            timeout=60)
    assert copied.returncode == 0, copied.stderr  # skopeo verifies every digest as it copies

    sibling = f"{registry.address}/shoal/sibling:v1"  # its blobs are mounted from shoal/pushed
    assert agent.cli("image", "tag", target, sibling).code == 0
    assert agent.cli("image", "push", sibling).code == 0
    with open(os.path.join(os.path.dirname(registry.storage), "registry.log")) as f:
        access = [line for line in f if "/v2/shoal/" in line]
    assert sum("/v2/shoal/sibling/blobs/uploads/?mount=" in line and '" 201 ' in line for line in access) == 3
    assert any(line.startswith(("127.0.0.1",)) and '"PATCH /v2/shoal/pushed/' in line for line in access)  # chunks
    for name in (target, sibling, "big:v1"):
        assert agent.cli("image", "rm", name).code == 0
    assert agent.cli("image", "pull", sibling).code == 0
    ran = agent.cli("run", "--rm", sibling, "sh", "-c", "echo $ORIGIN; ls /data")
    assert (ran.code, ran.out) == (0, "shoal\nbig\n"), ran.err
    assert agent.cli("image", "rm", sibling).code == 0
    missing = agent.cli("image", "push", f"{registry.address}/shoal/not-here:v1")
    assert missing.code == 1 and "not found" in missing.err


def test_registry_faults_give_clear_errors_and_concurrent_pulls_share_one_download(
        agent: AgentProcess, registry: Registry, test_root: str) -> None:
    layout = os.path.join(test_root, "layout-faults")
    write_layout(layout, [layer_tar(busybox_entries()), _extra_layer("faulty", 512 << 10)])
    registry.push_layout(layout, "team/faulty:v1")
    proxy = FaultyProxy(registry.address)
    image = f"{proxy.address}/team/faulty:v1"
    before = agent.cli_json("images")
    try:
        for setting, value, message in (("truncate", True, "download interrupted"),
                                        ("status", 500, "answered 500"),
                                        ("status", 403, "access denied"),
                                        ("media_type", "application/vnd.example.unknown+json",
                                         "unsupported manifest media type")):
            setattr(proxy, setting, value)
            failed = agent.cli("image", "pull", image)
            assert failed.code == 1 and message in failed.err, (setting, failed.err)
            setattr(proxy, setting, type(value)())
        assert agent.cli_json("images") == before  # every failure left the store as it was

        proxy.requests.clear()
        pulls = [subprocess.Popen([sys.executable, "-m", "cli.main", "--agent", agent.address, "image", "pull",
                                   image], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(3)]
        assert all(p.wait(timeout=60) == 0 for p in pulls)
        layer_fetches = [count for path, count in proxy.requests.items() if "/blobs/sha256:" in path]
        assert layer_fetches and max(layer_fetches) == 1  # one download for the three pulls
    finally:
        proxy.close()
    assert agent.cli("image", "rm", image).code == 0


def test_https_registry_trusted_through_certs_d(test_root: str, busybox_tar: str) -> None:
    from tests.integration.conftest import make_agent

    root = os.path.join(test_root, "registry-tls")
    os.makedirs(root, exist_ok=True)
    ca, cert, key = make_tls(root)
    secure = start_registry(root, tls=(cert, key))
    certs = os.path.join(root, "certs.d")
    agent = make_agent(test_root)
    agent.flags = ("--registry-certs-dir", certs)
    agent.start()
    try:
        layout = os.path.join(root, "layout")
        write_layout(layout, [layer_tar(busybox_entries())], env="OVER=tls")
        skopeo_certs = os.path.join(root, "skopeo-certs")  # only the CA: skopeo reads *.key as client keys
        os.makedirs(skopeo_certs)
        shutil.copy(ca, skopeo_certs)
        done = subprocess.run(["skopeo", "copy", "--quiet", "--dest-cert-dir", skopeo_certs, f"oci:{layout}:latest",
                               f"docker://{secure.address}/secure/app:v1"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        image = f"{secure.address}/secure/app:v1"
        untrusted = agent.cli("image", "pull", image)  # loopback, but its certificate is still checked
        assert untrusted.code == 1 and "its certificate is not trusted" in untrusted.err
        assert f"certs.d/{secure.address}/ca.crt" in untrusted.err
        os.makedirs(os.path.join(certs, secure.address))
        shutil.copy(ca, os.path.join(certs, secure.address, "ca.crt"))
        trusted = agent.cli("image", "pull", image)
        assert trusted.code == 0, trusted.err
        assert agent.cli("run", "--rm", image, "sh", "-c", "echo $OVER").out == "tls\n"
    finally:
        agent.destroy()
        stop_registry(secure)


def test_deploy_shows_the_agents_pull_progress(member: AgentProcess, controlplane: ControlPlane,  # noqa: F811
                                               registry: Registry, test_root: str) -> None:
    layout = os.path.join(test_root, "layout-slow")
    write_layout(layout, [layer_tar(busybox_entries()), _extra_layer("slow", 2 << 20)])
    registry.push_layout(layout, "team/slow:v1")
    proxy = FaultyProxy(registry.address)
    proxy.throttle = 1 << 20  # about three seconds for the image
    app = os.path.join(test_root, "slow.yaml")
    with open(app, "w") as f:
        f.write(f"name: slow\nimage: {proxy.address}/team/slow:v1\nargs: [sleep, '600']\n")
    try:
        deployed = subprocess.run([sys.executable, "-m", "cli.main", "--server", controlplane.address, "deploy",
                                   "-f", app], capture_output=True, text=True, timeout=120, env=ENV)
    finally:
        proxy.close()
    assert deployed.returncode == 0, deployed.stderr
    bars = [line for line in deployed.stdout.splitlines() if "slow.0 on " in line and "pulling" in line]
    assert bars and "] " in bars[-1] and " of " in bars[-1] and "MiB" in bars[-1], deployed.stdout
    assert "slow: 1/1 running" in deployed.stdout
    assert subprocess.run([sys.executable, "-m", "cli.main", "--server", controlplane.address, "delete", "slow"],
                          env=ENV, capture_output=True).returncode == 0
    eventually(lambda: member.cli_json("ps", "-a") == [])


@pytest.mark.skipif(shutil.which("umoci") is None, reason="needs umoci (apt-get install umoci)")
def test_images_made_by_umoci_and_saved_by_shoal_travel_through_skopeo(agent: AgentProcess, registry: Registry,
                                                                      test_root: str) -> None:
    root = os.path.join(test_root, "umoci")
    os.makedirs(os.path.join(root, "tree", "bin"))
    shutil.copy("/bin/busybox", os.path.join(root, "tree", "bin", "busybox"))
    os.symlink("busybox", os.path.join(root, "tree", "bin", "sh"))
    layout = os.path.join(root, "layout")
    for command in (["init", "--layout", layout], ["new", "--image", f"{layout}:v1"],
                    ["insert", "--image", f"{layout}:v1", os.path.join(root, "tree", "bin"), "/bin"],
                    ["config", "--image", f"{layout}:v1", "--config.env", "MADE_BY=umoci", "--config.cmd", "sh"]):
        done = subprocess.run(["umoci", *command], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
    copied = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:v1",
                             f"docker://{registry.address}/umoci/box:v1"], capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    made = f"{registry.address}/umoci/box:v1"
    assert agent.cli("image", "pull", made).code == 0
    assert agent.cli("run", "--rm", made, "sh", "-c", "echo $MADE_BY").out == "umoci\n"

    archive = os.path.join(root, "saved.tar")  # Shoal's own OCI layout, pushed by skopeo, pulled back
    assert agent.cli("image", "tag", made, "shoal/saved:v2").code == 0
    assert agent.cli("image", "save", "--format", "oci", "--file", archive, "shoal/saved:v2").code == 0
    copied = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci-archive:{archive}:v2",
                             f"docker://{registry.address}/shoal/saved:v2"], capture_output=True, text=True,
                            timeout=60)
    assert copied.returncode == 0, copied.stderr
    for name in (made, "shoal/saved:v2"):
        assert agent.cli("image", "rm", name).code == 0
    again = f"{registry.address}/shoal/saved:v2"
    assert agent.cli("image", "pull", again).code == 0
    assert agent.cli("run", "--rm", again, "sh", "-c", "echo $MADE_BY").out == "umoci\n"
    assert agent.cli("image", "rm", again).code == 0
