from __future__ import annotations

import pytest

from agent.build.dockerfile import (
    DockerfileError,
    Instruction,
    command_form,
    expand,
    key_values,
    parse,
    sources_and_destination,
)
from cli.build import ignore_rules, ignored

DOCKERFILE = """\
# syntax comment
ARG BASE=busybox
FROM ${BASE} AS build
RUN echo one \\
    && echo two
COPY --from=tools --chown=1:2 a b /dest/
FROM scratch
CMD ["sh", "-c", "x"]
"""


def test_stages_instructions_and_line_numbers() -> None:
    parsed = parse(DOCKERFILE)
    assert [a.arguments for a in parsed.global_args] == ["BASE=busybox"]
    build, final = parsed.stages
    assert (build.base, build.name, build.line, final.base, final.name) == ("${BASE}", "build", 3, "scratch", "")
    run, copy = build.instructions
    assert (run.line, run.keyword, run.arguments) == (4, "RUN", "echo one  && echo two")
    assert copy.flags == {"from": "tools", "chown": "1:2"} and copy.text == "COPY --chown=1:2 --from=tools a b /dest/"
    assert parsed.stage("build") == 0 and parsed.stage("") == 1
    with pytest.raises(DockerfileError, match="--target 'nope'"):
        parsed.stage("nope")


@pytest.mark.parametrize(("text", "message"), [
    ("RUN true\n", "Dockerfile:1: RUN before the first FROM"),
    ("FROM a\nHEALTHCHECK x\n", "Dockerfile:2: unknown instruction HEALTHCHECK (ONBUILD"),
    ("FROM a\nRUN\n", "Dockerfile:2: RUN needs arguments"),
    ("FROM a b\n", "Dockerfile:1: expected FROM IMAGE [AS NAME]"),
    ("FROM a\nCOPY --mode=7 x y\n", "Dockerfile:2: unknown flag '--mode=7'"),
    ("# nothing\n", "no FROM instruction"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse(text)


def test_variables_expand_as_docker_does() -> None:
    variables = {"A": "1", "EMPTY": ""}
    assert expand("$A ${A} ${B:-dflt} ${EMPTY:-dflt} ${A:+alt} ${B:+alt} \\$A", variables, 1) == "1 1 dflt dflt alt  $A"


def test_env_label_forms_and_command_forms() -> None:
    assert key_values(Instruction(1, "ENV", 'A=1 B="two words"'), {}) == [("A", "1"), ("B", "two words")]
    assert key_values(Instruction(1, "ENV", "LEGACY value with spaces"), {}) == [("LEGACY", "value with spaces")]
    with pytest.raises(DockerfileError, match="Dockerfile:1: ENV"):
        key_values(Instruction(1, "ENV", "ALONE"), {})
    assert command_form(Instruction(1, "CMD", '["a", "b"]')) == ["a", "b"]
    assert command_form(Instruction(1, "RUN", "echo $HOME")) == ["/bin/sh", "-c", "echo $HOME"]
    assert sources_and_destination(Instruction(1, "COPY", '["a b", "/c/"]'), {}) == (["a b"], "/c/")
    with pytest.raises(DockerfileError, match="at least one source"):
        sources_and_destination(Instruction(1, "COPY", "onlyone"), {})


def test_dockerignore_patterns_and_exceptions(tmp_path: object) -> None:
    import os

    with open(os.path.join(str(tmp_path), ".dockerignore"), "w") as f:
        f.write("# comment\n*.log\n**/cache\nbuild/\n!build/keep.txt\n")
    rules = ignore_rules(str(tmp_path))
    assert ignored("x.log", rules) and not ignored("src/x.log", rules)  # `*` stays in one directory
    assert ignored("a/b/cache", rules) and ignored("a/b/cache/file", rules) and ignored("cache", rules)
    assert ignored("build/out.o", rules) and not ignored("build/keep.txt", rules)
    assert not ignored("main.py", rules)
