"""The gRPC core settings every Shoal process applies (agent/__init__.py and its twins) stay valid.

A grpcio release that drops one of the experiments named in GRPC_EXPERIMENTS would print
"Unknown experiment" on every clusterctl command's stderr; this test sees that first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROUND_TRIP = """
import {package}
import grpc
from concurrent import futures

server = grpc.server(futures.ThreadPoolExecutor(1))
echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Echo", {{"Call": echo}})])
server.add_insecure_port("unix://{socket}")
server.start()
with grpc.insecure_channel("unix://{socket}") as channel:
    assert channel.unary_unary("/t.Echo/Call")(b"ping", timeout=10) == b"ping"
server.stop(None)
import os
print(os.environ["GRPC_EXPERIMENTS"], os.environ["GRPC_VERBOSITY"])
"""


@pytest.mark.parametrize("package", ["agent", "cli", "controlplane"])
def test_each_package_sets_experiments_grpc_knows(package: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("GRPC_EXPERIMENTS", "GRPC_VERBOSITY")}
    script = ROUND_TRIP.format(package=package, socket=tmp_path / "echo.sock")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "-event_engine_client,-event_engine_listener ERROR"
    assert "experiment" not in done.stderr.lower(), done.stderr


def test_an_operators_own_setting_is_kept(tmp_path: Path) -> None:
    env = {**os.environ, "GRPC_EXPERIMENTS": "-event_engine_dns"}
    done = subprocess.run([sys.executable, "-c", "import cli, os; print(os.environ['GRPC_EXPERIMENTS'])"],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2], timeout=60)
    assert done.stdout.strip() == "-event_engine_dns", done.stderr
