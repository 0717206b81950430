from __future__ import annotations

import pytest

from agent.config import AgentConfig
from agent.containers.model import ContainerSpec, Mount, Resources, RestartKind, RestartPolicy
from agent.containers.runspec import argv_for, process_for
from agent.containers.validate import validate
from agent.errors import InvalidSpec
from agent.images.model import ImageConfig


@pytest.mark.parametrize(("spec", "field"), [
    (ContainerSpec(image=""), "image"),
    (ContainerSpec(image="x", name="-bad"), "name"),
    (ContainerSpec(image="x", hostname="under_score"), "hostname"),
    (ContainerSpec(image="x", env=("NOVALUE",)), "env[0]"),
    (ContainerSpec(image="x", working_dir="relative"), "working_dir"),
    (ContainerSpec(image="x", mounts=(Mount(source="rel", destination="/d"),)), "mounts[0].source"),
    (ContainerSpec(image="x", mounts=(Mount(source="/nonexistent-shoal", destination="/d"),)), "mounts[0].source"),
    (ContainerSpec(image="x", mounts=(Mount(source="/", destination="/"),)), "mounts[0].destination"),
    (ContainerSpec(image="x", mounts=(Mount(source="/", destination="/a"), Mount(source="/", destination="/a/"))),
     "mounts[1].destination"),
    (ContainerSpec(image="x", resources=Resources(memory_bytes=1024)), "resources.memory_bytes"),
    (ContainerSpec(image="x", resources=Resources(cpu_millis=10**9)), "resources.cpu_millis"),
    (ContainerSpec(image="x", resources=Resources(cpu_shares=1)), "resources.cpu_shares"),
    (ContainerSpec(image="x", resources=Resources(pids_limit=-1)), "resources.pids_limit"),
    (ContainerSpec(image="x", restart_policy=RestartPolicy(kind=RestartKind.ALWAYS, max_retries=2)),
     "restart_policy.max_retries"),
    (ContainerSpec(image="x", auto_remove=True, restart_policy=RestartPolicy(kind=RestartKind.ALWAYS)),
     "auto_remove"),
])
def test_each_rule_names_its_field(spec: ContainerSpec, field: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        validate(spec)
    assert raised.value.field == field
    assert str(raised.value).startswith(field + ": ")


def test_a_good_spec_passes() -> None:
    validate(ContainerSpec(image="busybox", name="web-1", hostname="web-1.local", env=("A=1", "B="),
                           mounts=(Mount(source="/", destination="/host", read_only=True),),
                           resources=Resources(memory_bytes=64 << 20, cpu_millis=500, cpu_shares=512, pids_limit=10)))


IMAGE = ImageConfig(entrypoint=("/entry",), cmd=("--serve",), env=("PATH=/img", "A=image"), working_dir="/app",
                    user="app")


def test_docker_merge_rules() -> None:
    assert argv_for(ContainerSpec(image="x"), IMAGE) == ("/entry", "--serve")
    assert argv_for(ContainerSpec(image="x", command=("--debug",)), IMAGE) == ("/entry", "--debug")
    assert argv_for(ContainerSpec(image="x", entrypoint=("sh",)), IMAGE) == ("sh",)
    with pytest.raises(InvalidSpec, match="command"):
        argv_for(ContainerSpec(image="x"), ImageConfig())
    process = process_for(ContainerSpec(image="x", env=("A=spec",)), IMAGE, "h1")
    assert dict(e.split("=", 1) for e in process.env) == {"PATH": "/img", "A": "spec", "HOSTNAME": "h1"}
    assert (process.cwd, process.user) == ("/app", "app")
    assert process_for(ContainerSpec(image="x"), ImageConfig(cmd=("x",)), "h").user == "0"


@pytest.mark.parametrize(("config", "flag"), [
    (AgentConfig(state_dir="relative"), "--state-dir"),
    (AgentConfig(cgroup_parent="bad parent"), "--cgroup-parent"),
    (AgentConfig(listen=("unix:///run/a.sock", "nonsense")), "--listen"),
    (AgentConfig(advertise_address="no-port"), "--advertise-address"),
    (AgentConfig(metrics_listen="nope"), "--metrics-listen"),
])
def test_agent_flags_are_validated(config: AgentConfig, flag: str) -> None:
    with pytest.raises(InvalidSpec, match=flag):
        config.validate()


def test_default_listen_lives_in_the_state_dir() -> None:
    assert AgentConfig(state_dir="/srv/a").grpc_addresses == ("unix:///srv/a/agent.sock",)


@pytest.mark.parametrize(("listen", "flag", "advertised"), [
    ((), "", ""),
    (("unix:///a.sock", "0.0.0.0:7421", "10.1.2.3:7421"), "", "10.1.2.3:7421"),
    (("unix:///a.sock", "10.1.2.3:7421"), "node1.example:7421", "node1.example:7421"),
])
def test_advertised_address_is_the_first_specific_tcp_listener(listen: tuple[str, ...], flag: str,
                                                               advertised: str) -> None:
    assert AgentConfig(listen=listen, advertise_address=flag).advertise == advertised
