from __future__ import annotations

import pytest
from shoal.agent.v1 import containers_pb2 as cpb

from cli.containers import CliError, parse_restart, parse_volume, status_text
from cli.main import build_parser
from cli.quantity import format_bytes, parse_cpus, parse_memory


@pytest.mark.parametrize(("text", "value"), [("64Mi", 64 << 20), ("512m", 512 << 20), ("1g", 1 << 30),
                                             ("1048576", 1048576), ("64MB", 64 << 20), ("2Ki", 2048)])
def test_memory_units_are_binary(text: str, value: int) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["lots", "", "-1", "1x"])
def test_bad_memory(text: str) -> None:
    with pytest.raises(ValueError, match="is not a memory size"):
        parse_memory(text)


def test_cpus() -> None:
    assert parse_cpus("0.5") == 500 and parse_cpus("2") == 2000
    with pytest.raises(ValueError, match="at least"):
        parse_cpus("0")


def test_restart_and_volume_flags() -> None:
    assert parse_restart("on-failure:3").max_retries == 3
    assert parse_restart("always").kind == cpb.RestartPolicy.KIND_ALWAYS
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(CliError):
            parse_restart(bad)
    mount = parse_volume("/srv:/data:ro")
    assert (mount.source, mount.destination, mount.read_only) == ("/srv", "/data", True)
    with pytest.raises(CliError):
        parse_volume("/srv")


def test_output_flag_is_accepted_before_and_after_the_verb() -> None:
    parser = build_parser()
    assert parser.parse_args(["-o", "json", "ps"]).output == "json"
    assert parser.parse_args(["ps", "-o", "yaml"]).output == "yaml"
    assert parser.parse_args(["image", "ls", "-o", "json"]).output == "json"
    assert parser.parse_args(["ps"]).output == "table"


def test_run_keeps_the_command_verbatim() -> None:
    args = build_parser().parse_args(["run", "--rm", "img", "sh", "-c", "echo -n hi"])
    assert args.command == ["sh", "-c", "echo -n hi"] and args.rm


def test_status_text() -> None:
    exited = cpb.Container(state=cpb.CONTAINER_STATE_EXITED, exit_code=137, oom_killed=True)
    assert status_text(exited).startswith("Exited (137, OOM killed)")
    assert status_text(cpb.Container(state=cpb.CONTAINER_STATE_CREATED)) == "Created"
    assert format_bytes(3 << 20) == "3.0MiB"


def test_container_verbs_go_to_the_cluster_only_when_one_is_configured(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: object) -> None:
    from cli.main import resolve_target

    monkeypatch.setenv("SHOAL_CONFIG", f"{tmp_path}/absent.yaml")
    monkeypatch.delenv("SHOAL_SERVER", raising=False)
    monkeypatch.delenv("SHOAL_AGENT", raising=False)

    def target(*argv: str) -> str:
        return resolve_target(build_parser().parse_args(argv))

    assert target("ps") == "agent"
    assert target("--server", "cp:7420", "ps") == "server"
    assert target("--server", "cp:7420", "--agent", "unix:///a.sock", "logs", "web") == "agent"
    assert target("--server", "cp:7420", "stop", "web") == "agent"  # no cluster form
    assert target("deploy", "-f", "app.yaml") == "server"
    with open(f"{tmp_path}/absent.yaml", "w") as f:
        f.write("server: cp:7420\n")
    assert target("exec", "web", "true") == "server"
    monkeypatch.setenv("SHOAL_AGENT", "unix:///b.sock")
    assert target("exec", "web", "true") == "agent"


def test_cluster_run_builds_a_one_replica_app() -> None:
    from cli.replicas import app_name, spec_from_run

    args = build_parser().parse_args(["run", "-e", "A=1", "-m", "64Mi", "--cpus", "0.5", "--restart", "on-failure:3",
                                      "-p", "8080:80", "-p", "53/udp", "ghcr.io/team/Web_App:1.2", "serve", "--port",
                                      "80"])
    spec = spec_from_run(args)
    assert [(p.host_port, p.container_port, p.protocol) for p in spec.ports] == [(8080, 80, "tcp"), (53, 53, "udp")]
    assert spec.network == "" and spec_from_run(build_parser().parse_args(["run", "--network", "host",
                                                                             "busybox"])).network == "host"
    assert spec.name.startswith("web-app-") and len(spec.name) == len("web-app-") + 4
    assert (spec.replicas, list(spec.args), dict(spec.env)) == (1, ["serve", "--port", "80"], {"A": "1"})
    assert (spec.resources.memory_bytes, spec.resources.cpu_millis, spec.restart.max_retries) == (64 << 20, 500, 3)
    assert app_name("registry:5000/x@sha256:abc").startswith("x-")
    for flags, message in ((["-v", "/a:/b"], "-v: not available"), (["-p", "80:http"], "-p: '80:http'"),
                           (["-p", "70000:80"], "1 to 65535"),
                           (["--restart", "sometimes"], "--restart"), (["-e", "NOVALUE"], "-e: 'NOVALUE'"),
                           (["-m", "lots"], "memory")):
        with pytest.raises(CliError, match=message) as raised:
            spec_from_run(build_parser().parse_args(["run", *flags, "busybox"]))
        assert raised.value.code == 2


def test_deploy_shows_a_pull_as_a_progress_bar() -> None:
    from cli.cluster import _bar

    assert _bar("pulling app:v1 (3.0 of 12.0 MiB)", width=8) == "pulling app:v1 [==      ] 3.0 of 12.0 MiB"
    assert _bar("pulling app:v1") == "pulling app:v1"
