from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.containers.model import Container, ContainerSpec, RestartKind, RestartPolicy, State
from agent.containers.restart import MAX_DELAY, STABLE_RUN, decide
from agent.containers.state import TRANSITIONS, transition, with_unrecorded_run
from agent.errors import Conflict

ALWAYS = RestartPolicy(kind=RestartKind.ALWAYS)


def run(policy: RestartPolicy, code: int = 1, count: int = 0, step: int = 0, ran: float = 0.5,
        stopped: bool = False) -> tuple[bool, float, int]:
    d = decide(policy, exit_code=code, restart_count=count, backoff_step=step, ran_for=ran, stopped_by_user=stopped)
    return d.restart, d.delay, d.next_backoff_step


def test_no_policy_never_restarts() -> None:
    assert run(RestartPolicy())[0] is False


def test_on_failure_restarts_only_failures_up_to_max() -> None:
    policy = RestartPolicy(kind=RestartKind.ON_FAILURE, max_retries=2)
    assert run(policy, code=0)[0] is False
    assert run(policy, code=1, count=1)[0] is True
    assert run(policy, code=1, count=2)[0] is False
    assert run(RestartPolicy(kind=RestartKind.ON_FAILURE), code=3, count=1000)[0] is True


def test_always_restarts_success_but_not_a_manual_stop() -> None:
    assert run(ALWAYS, code=0)[0] is True
    assert run(ALWAYS, code=137, stopped=True)[0] is False


def test_backoff_doubles_then_caps_and_resets_after_a_stable_run() -> None:
    delays = []
    step = 0
    for _ in range(12):
        _, delay, step = run(ALWAYS, step=step)
        delays.append(delay)
    assert delays[:3] == pytest.approx([0.1, 0.2, 0.4])
    assert delays[-1] == MAX_DELAY
    assert run(ALWAYS, step=9, ran=STABLE_RUN)[1:] == (pytest.approx(0.1), 1)


@given(st.integers(0, 255), st.integers(0, 50), st.integers(0, 40), st.floats(0, 1000))
def test_delay_is_always_bounded(code: int, count: int, step: int, ran: float) -> None:
    restart, delay, _ = run(ALWAYS, code=code, count=count, step=step, ran=ran)
    assert restart and 0 < delay <= MAX_DELAY


def container(state: State) -> Container:
    return Container(id="a" * 64, name="c", spec=ContainerSpec(image="x"), image_id="sha256:" + "b" * 64,
                     argv=("true",), state=state)


def test_transitions_follow_the_table() -> None:
    for source, targets in TRANSITIONS.items():
        for target in State:
            if target in targets:
                assert transition(container(source), target).state is target
            else:
                with pytest.raises(Conflict, match=f"is {source.value}; it cannot become {target.value}"):
                    transition(container(source), target)


def test_record_round_trips_through_json() -> None:
    original = container(State.RUNNING).evolve(pid=7, exit_code=3)
    assert Container.from_json(json.loads(json.dumps(original.to_json()))) == original
    # to_json is written out by hand for speed: it must say exactly what a deep conversion says.
    assert json.dumps(original.to_json(), sort_keys=True) == json.dumps(asdict(original), sort_keys=True)


def test_a_run_the_agent_did_not_record_becomes_the_containers() -> None:
    """The agent died between the supervisor's start and its own record of it (recovery)."""
    created = container(State.CREATED)
    run = {"pid": 4321, "generation": created.generation + 1, "started_at": 17}
    adopted = with_unrecorded_run(created, run)
    assert (adopted.state, adopted.pid, adopted.generation, adopted.started_at) == (State.RUNNING, 4321, 1, 17)
    exited = container(State.EXITED).evolve(generation=3)
    assert with_unrecorded_run(exited, {**run, "generation": 4}).state is State.RUNNING


def test_a_run_the_record_knows_or_no_run_changes_nothing() -> None:
    exited = container(State.EXITED).evolve(generation=2)
    assert with_unrecorded_run(exited, {"pid": 1, "generation": 2, "started_at": 0}) is exited
    assert with_unrecorded_run(exited, None) is exited
    running = container(State.RUNNING).evolve(generation=2)
    assert with_unrecorded_run(running, {"pid": 1, "generation": 3, "started_at": 0}) is running
