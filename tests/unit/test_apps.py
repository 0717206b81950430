"""The app file format (clusterctl's loader) and the control plane's app validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from shoal.controlplane.v1 import apps_pb2 as pb

from cli.appfile import EXIT_BAD_INPUT, AppFileError, load_apps
from controlplane.apps.model import App, Restart
from controlplane.apps.validate import InvalidApp, validate

GOOD = """\
name: web
image: busybox:local
command: httpd -f -p 8080
env:
  MODE: prod
  DEBUG: false
replicas: 3
resources: {cpus: 0.5, memory: 64Mi, pids: 100}
restart: on-failure:3
placement:
  constraints: ["node.labels.zone == a"]
  spread: node.labels.zone
labels: {team: web}
---
name: worker
image: busybox:local
args: [sleep, "3600"]
env: ["QUEUE=jobs"]
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "app.yaml"
    path.write_text(text)
    return str(path)


def test_a_full_file_loads(tmp_path: Path) -> None:
    web, worker = load_apps(write(tmp_path, GOOD))
    assert (web.name, list(web.command), web.replicas) == ("web", ["httpd", "-f", "-p", "8080"], 3)
    assert dict(web.env) == {"MODE": "prod", "DEBUG": "false"}
    assert (web.resources.cpu_millis, web.resources.memory_bytes, web.resources.pids_limit) == (500, 64 << 20, 100)
    assert (web.restart.kind, web.restart.max_retries) == (pb.AppRestartPolicy.KIND_ON_FAILURE, 3)
    assert list(web.placement.constraints) == ["node.labels.zone == a"] and web.placement.spread == "node.labels.zone"
    assert (worker.replicas, list(worker.args), dict(worker.env)) == (1, ["sleep", "3600"], {"QUEUE": "jobs"})
    assert worker.restart.kind == pb.AppRestartPolicy.KIND_ALWAYS and worker.placement.spread == "node"


@pytest.mark.parametrize(("text", "message"), [
    ("name: web\nimage: x\nreplica: 2\n", "document 1 (web): replica: unknown field (did you mean 'replicas'?)"),
    ("name: web\n", "document 1 (web): image: a string is required"),
    ("name: web\nimage: x\nreplicas: many\n", "replicas: 'many': a whole number"),
    ("name: web\nimage: x\nresources: {memory: lots}\n", "resources.memory: 'lots' is not a memory size"),
    ("name: web\nimage: x\nresources: {cpu: 1}\n", "resources.cpu: unknown field (did you mean 'cpus'?)"),
    ("name: web\nimage: x\nrestart: sometimes\n", "restart: 'sometimes': expected no, always or on-failure"),
    ("name: web\nimage: x\nenv: [NOVALUE]\n", "env[0]: 'NOVALUE' must be KEY=VALUE"),
    ("name: web\nimage: x\nplacement: {constraints: 3}\n", "placement.constraints: expected a list"),
    ("name: a\nimage: x\n---\nname: a\nimage: y\n", "document 2 (a): name: 'a' is already used by document 1"),
    ("- just\n- a list\n", "document 1: expected a mapping of fields"),
    ("name: [unclosed\n", "not valid YAML: line 2"),
    ("---\n", "no apps in the file"),
])
def test_every_mistake_names_file_document_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AppFileError) as raised:
        load_apps(path)
    assert str(raised.value).startswith(path + ": ") and message in str(raised.value)
    assert raised.value.code == EXIT_BAD_INPUT


def test_missing_file() -> None:
    with pytest.raises(AppFileError, match=r"/no/such\.yaml: no such file"):
        load_apps("/no/such.yaml")


@pytest.mark.parametrize(("app", "field"), [
    (App(name="Web", image="x"), "name"),
    (App(name="web-", image="x"), "name"),
    (App(name="web", image=" "), "image"),
    (App(name="web", image="x", replicas=20_000), "replicas"),
    (App(name="web", image="x", env={"1BAD": "x"}), "env.1BAD"),
    (App(name="web", image="x", memory_bytes=1024), "resources.memory"),
    (App(name="web", image="x", restart=Restart.ALWAYS, max_retries=3), "restart"),
    (App(name="web", image="x", constraints=("zone == a",)), "placement.constraints[0]"),
    (App(name="web", image="x", spread="zone"), "placement.spread"),
])
def test_validation_names_the_field(app: App, field: str) -> None:
    with pytest.raises(InvalidApp) as raised:
        validate(app)
    assert raised.value.field == field


def test_a_valid_app() -> None:
    validate(App(name="web-1", image="busybox:local", replicas=3, memory_bytes=64 << 20,
                 constraints=("node.labels.zone == a",), spread="node.labels.zone", restart=Restart.ON_FAILURE,
                 max_retries=2))


def test_the_example_file_loads() -> None:
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    web, worker, greeter = load_apps(os.path.join(root, "examples", "apps.yaml"))
    assert (web.name, web.replicas, worker.name, worker.restart.max_retries) == ("web", 3, "worker", 5)
    assert [(p.host_port, p.container_port) for p in greeter.ports] == [(8080, 80)]


def test_pull_policy_is_checked_and_if_not_present_is_the_default(tmp_path: Path) -> None:
    path = str(tmp_path / "apps.yaml")
    with open(path, "w") as f:
        f.write("name: a\nimage: x\n---\nname: b\nimage: x\npull_policy: if-not-present\n---\n"
                "name: c\nimage: x\npull_policy: always\n")
    assert [app.pull_policy for app in load_apps(path)] == ["", "", "always"]
    with open(path, "w") as f:
        f.write("name: a\nimage: x\npull_policy: sometimes\n")
    with pytest.raises(AppFileError, match="pull_policy: 'sometimes': expected if-not-present, always or never"):
        load_apps(path)
    with pytest.raises(InvalidApp, match="pull_policy"):
        validate(App(name="a", image="x", pull_policy="sometimes"))
