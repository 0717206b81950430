from __future__ import annotations

from agent.membership import StartFailure


def test_a_replica_that_cannot_start_waits_its_backoff_unless_something_changed() -> None:
    failure = StartFailure("no such image: app:v1", version="v1", attempts=3, retry_at=100.0, images=7)
    assert not failure.due("v1", 7, now=99.0)
    assert failure.due("v1", 7, now=100.0)  # the backoff is over
    assert failure.due("v1", 8, now=0.0)  # an image was imported meanwhile
    assert failure.due("v2", 7, now=0.0)  # a new version was assigned
