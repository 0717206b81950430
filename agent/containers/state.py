"""The container lifecycle as an explicit state machine.

    created ──start──▶ running ──exit──▶ exited ──start──▶ running
                          │  ▲                ▲
                     exit │  │ backoff over   │ stop/kill during backoff, or restart failed
                          ▼  │                │
                        restarting ───────────┘
A failed start leaves a created container created (and an exited one exited), with `error` set.
"""

from __future__ import annotations

from agent.containers.model import Container, State
from agent.errors import Conflict

TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.RUNNING}),
    State.RUNNING: frozenset({State.EXITED, State.RESTARTING}),
    State.RESTARTING: frozenset({State.RUNNING, State.EXITED}),
    State.EXITED: frozenset({State.RUNNING}),
}


def transition(container: Container, to: State, **changes: object) -> Container:
    """Returns the container in state `to`, or raises Conflict naming both states."""
    if to not in TRANSITIONS[container.state]:
        raise Conflict(f"container {container.name} is {container.state.value}; it cannot become {to.value}")
    return container.evolve(state=to, **changes)


def with_unrecorded_run(container: Container, run: dict[str, object] | None) -> Container:
    """The container as the supervisor's record of its latest run (`run.json`) shows it, when that
    run is newer than the agent's record: the agent died between the supervisor's start and its
    own record of it. The run is then the container's (running; its exit, if any, is applied from
    `exit.json` as for any running container). Otherwise the container, unchanged."""
    if container.is_active or run is None or int(str(run["generation"])) <= container.generation:
        return container
    return transition(container, State.RUNNING, pid=int(str(run["pid"])), generation=int(str(run["generation"])),
                      started_at=int(str(run["started_at"])), error="", stopped_by_user=False)
