from __future__ import annotations

import pytest

from controlplane.errors import InvalidSpec
from controlplane.replicas import parse_target


@pytest.mark.parametrize(("target", "parsed"), [("web", ("web", None)), ("web.2", ("web", 2)),
                                                 ("my-app.10", ("my-app", 10))])
def test_targets_are_an_app_or_one_replica(target: str, parsed: tuple[str, int | None]) -> None:
    assert parse_target(target) == parsed


@pytest.mark.parametrize("target", ["", "web.x", "a.b.c", ".3", "web/0"])
def test_other_targets_are_refused_naming_the_field(target: str) -> None:
    with pytest.raises(InvalidSpec, match=r"target: .*expected an app name or a replica"):
        parse_target(target)
