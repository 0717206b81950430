"""protobuf ⇄ domain converters round-trip."""

from __future__ import annotations

from agent.api.convert import container_to_pb, spec_from_pb, spec_to_pb
from agent.containers.model import (
    Container,
    ContainerSpec,
    Mount,
    NetworkMode,
    Resources,
    RestartKind,
    RestartPolicy,
    State,
)

SPEC = ContainerSpec(name="web", image="busybox:1", entrypoint=("sh",), command=("-c", "true"), env=("A=1",),
                     hostname="h", user="app", working_dir="/srv",
                     mounts=(Mount(source="/a", destination="/b", read_only=True),),
                     resources=Resources(memory_bytes=1 << 26, cpu_millis=500, cpu_shares=100, pids_limit=3),
                     restart_policy=RestartPolicy(kind=RestartKind.ON_FAILURE, max_retries=2),
                     network=NetworkMode.HOST, auto_remove=False, labels={"k": "v"})


def test_spec_round_trip() -> None:
    assert spec_from_pb(spec_to_pb(SPEC)) == SPEC
    assert spec_from_pb(spec_to_pb(ContainerSpec(image="x"))) == ContainerSpec(image="x")


def test_container_to_pb_leaves_never_times_unset() -> None:
    container = Container(id="a" * 64, name="web", spec=SPEC, image_id="sha256:" + "b" * 64, argv=("sh",),
                          state=State.EXITED, exit_code=3, created_at=1_700_000_000_000_000_000)
    message = container_to_pb(container)
    assert message.HasField("created_at") and not message.HasField("started_at")
    assert message.exit_code == 3 and message.spec.name == "web"
