"""Whether and when to restart a container whose process exited (pure; Docker's semantics).

Backoff: 100 ms, doubling with every exit that follows a short run, capped at one minute; a run
that lasted STABLE_RUN seconds resets it. A container stopped or killed through the API is never
restarted by its policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.containers.model import RestartKind, RestartPolicy

BASE_DELAY = 0.1
MAX_DELAY = 60.0
STABLE_RUN = 10.0


@dataclass(frozen=True, slots=True)
class RestartDecision:
    restart: bool
    delay: float = 0.0
    next_backoff_step: int = 0


def decide(policy: RestartPolicy, *, exit_code: int, restart_count: int, backoff_step: int, ran_for: float,
           stopped_by_user: bool) -> RestartDecision:
    if stopped_by_user or policy.kind is RestartKind.NO:
        return RestartDecision(False)
    if policy.kind is RestartKind.ON_FAILURE:
        if exit_code == 0:
            return RestartDecision(False)
        if policy.max_retries and restart_count >= policy.max_retries:
            return RestartDecision(False)
    step = 0 if ran_for >= STABLE_RUN else backoff_step
    return RestartDecision(True, min(BASE_DELAY * (2 ** step), MAX_DELAY), step + 1)
