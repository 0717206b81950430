"""`clusterctl build` on a real agent: RUN in Shoal containers, COPY/ADD, multi-stage, the layer cache."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from tests.integration.harness import AgentProcess, free_port

if os.geteuid() != 0:
    pytest.skip("the integration level needs root", allow_module_level=True)

DOCKERFILE = """\
ARG BASE=busybox:test
FROM ${BASE} AS builder
ARG GREETING=hi
ENV APP=/app
WORKDIR $APP
COPY src/ ./src/
COPY src/a.txt .
RUN echo "$GREETING from $APP" > built.txt && rm /bin/ls && test -f /app/a.txt
FROM busybox:test
COPY --from=builder /app/built.txt /out/
COPY --chown=1000:1000 src/*.txt /out/
ADD bundle.tar /opt/bundle/
ENV MODE=prod
USER 1000
LABEL org.example.team=shoal
EXPOSE 8080/udp
ENTRYPOINT ["sh", "-c"]
CMD ["cat /out/built.txt"]
"""


def _context(root: str) -> str:
    context = os.path.join(root, "context")
    os.makedirs(os.path.join(context, "src"), exist_ok=True)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(context, "src", "a.txt"), "w") as f:
        f.write("alpha\n")
    with open(os.path.join(context, "src", "debug.log"), "w") as f:
        f.write("never sent\n")
    with open(os.path.join(context, ".dockerignore"), "w") as f:
        f.write("**/*.log\n")
    with tarfile.open(os.path.join(context, "bundle.tar"), "w") as tar:
        data = b"from a tar\n"
        info = tarfile.TarInfo("inner/file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return context


def test_multi_stage_build_runs_and_carries_its_config(agent: AgentProcess, test_root: str) -> None:
    context = _context(test_root)
    built = agent.cli("build", "-t", "built:v1", "--build-arg", "GREETING=howdy", context)
    assert built.code == 0, built.err
    assert "Step 7/17 : RUN" in built.out and "Successfully tagged built:v1" in built.out
    assert agent.cli("run", "--rm", "built:v1").out == "howdy from /app\n"  # ENTRYPOINT + CMD
    listing = agent.cli("run", "--rm", "built:v1", "ls -n /out /opt/bundle/inner; id -u; echo $MODE")
    assert listing.code == 0, listing.err
    assert "1000     1000" in listing.out and "a.txt" in listing.out and "debug.log" not in listing.out
    assert "file.txt" in listing.out and listing.out.endswith("1000\nprod\n")
    [image] = agent.cli_json("image", "inspect", "built:v1")  # type: ignore[misc]
    config = image["config"]
    assert config["labels"] == {"org.example.team": "shoal"} and config["exposed_ports"] == ["8080/udp"]
    assert config["entrypoint"] == ["sh", "-c"] and config["user"] == "1000"
    stage = agent.cli("build", "--target", "builder", "-t", "stage:v1", context)
    assert stage.code == 0, stage.err
    removed = agent.cli("run", "--rm", "stage:v1", "sh", "-c", "test -e /bin/ls || echo gone; cat /app/built.txt")
    assert removed.out == "gone\nhi from /app\n"  # RUN's deletion is a whiteout in its layer; ARG's default
    for name in ("built:v1", "stage:v1"):
        assert agent.cli("image", "rm", name).code == 0


def test_unchanged_rebuild_is_all_cache_and_a_change_rebuilds_from_there(agent: AgentProcess,
                                                                         test_root: str) -> None:
    context = _context(os.path.join(test_root, "cache"))
    first = agent.cli("build", "-t", "cached:v1", context)
    assert first.code == 0, first.err
    again = agent.cli("build", "-t", "cached:v1", context)
    assert again.code == 0 and again.out.count("---> Using cache") == 6  # COPY, COPY, RUN, COPY, COPY, ADD
    assert "Running in" not in again.out
    ids = [json.loads(agent.cli("image", "inspect", "cached:v1", "-o", "json").out)[0]["id"]]
    assert first.out.split("Successfully built ")[1][:12] == again.out.split("Successfully built ")[1][:12]
    with open(os.path.join(context, "src", "a.txt"), "a") as f:
        f.write("changed\n")
    changed = agent.cli("build", "-t", "cached:v1", context)
    assert changed.code == 0, changed.err
    # The builder stage's COPY and RUN run again; in the final stage COPY --from is a hit (the RUN made
    # the same file), the COPY of src/*.txt is not, and neither is anything after it.
    assert changed.out.count("---> Using cache") == 1
    assert "Running in" in changed.out
    ids.append(json.loads(agent.cli("image", "inspect", "cached:v1", "-o", "json").out)[0]["id"])
    assert ids[0] != ids[1]
    listed = agent.cli_json("images")
    assert all(image["repo_tags"] for image in listed)  # type: ignore[index,union-attr]  # the cache is hidden...
    assert len(agent.cli_json("images", "-a")) > len(listed)  # type: ignore[arg-type]  # ...unless asked for
    no_cache = agent.cli("build", "--no-cache", "-t", "cached:v1", context)
    assert no_cache.code == 0 and "Using cache" not in no_cache.out
    assert agent.cli("image", "rm", "cached:v1").code == 0


def test_build_errors_name_the_line_and_show_the_output(agent: AgentProcess, test_root: str) -> None:
    context = os.path.join(test_root, "broken")
    os.makedirs(context, exist_ok=True)
    cases = [
        ("FROM busybox:test\nRUN echo about to fail && exit 3\n",
         "Dockerfile:2: RUN echo about to fail && exit 3: the command returned a non-zero code: 3"),
        ("FROM busybox:test\nVOLUME /data\n", "Dockerfile:2: unknown instruction VOLUME"),
        ("FROM busybox:test\nCOPY missing.txt /x\n", "Dockerfile:2: COPY: missing.txt: no such file in the build"),
        ("FROM busybox:test\nCOPY ../outside /x\n", "Dockerfile:2: COPY: ../outside: "),
        ("FROM busybox:test\nCOPY --from=nowhere /a /b\n", "Dockerfile:2: COPY --from=nowhere: no earlier stage"),
        (f"FROM 127.0.0.1:{free_port()}/none:v1\n", "Dockerfile:1: FROM 127.0.0.1:"),
    ]
    for text, message in cases:
        with open(os.path.join(context, "Dockerfile"), "w") as f:
            f.write(text)
        failed = agent.cli("build", context)
        assert failed.code == 1 and message in failed.err, (text, failed.err)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(cases[0][0])
    assert "about to fail" in agent.cli("build", context).out  # the failing step's output comes first
    assert agent.cli_json("ps", "-a") == []  # no build container stays behind
