"""The architecture rules of ../shared/STYLE.md that imports can break, checked in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = os.pathsep.join([ROOT, os.path.join(ROOT, "protos")])

# Pure logic: no gRPC, protobuf or asyncio, so it is testable and reusable anywhere.
PURE = ["agent.containers.model", "agent.containers.state", "agent.containers.restart",
        "agent.containers.validate", "agent.containers.runspec", "agent.images.model", "agent.images.reference",
        "agent.cgroups", "agent.config", "controlplane.scheduling.scheduler", "controlplane.scheduling.reconciler",
        "controlplane.apps.validate", "agent.build.dockerfile", "agent.build.imageconfig", "agent.build.layers",
        "agent.images.registry",
        "agent.images.pull", "agent.images.push", "agent.images.save", "agent.network.plan"]


def imported_by(module: str, *, site: bool = True) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    flags = [] if site else ["-S"]
    out = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": PATH}).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_stay_pure(module: str) -> None:
    assert not imported_by(module) & {"grpc", "google", "asyncio", "shoal"}


def test_cli_never_imports_the_agent_and_the_agent_never_the_cli() -> None:
    assert "agent" not in imported_by("cli.main")
    assert not imported_by("agent.wiring") & {"cli", "controlplane"}
