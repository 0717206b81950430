"""Placement constraints: `node.labels.KEY == VALUE`, `!=`, and `node.name` / `node.id` the same way."""

from __future__ import annotations

import re

from controlplane.scheduling.model import Constraint, Node

_CONSTRAINT = re.compile(r"^\s*(node\.(?:labels\.[A-Za-z0-9_./-]+|name|id))\s*(==|!=)\s*(\S+)\s*$")
_SPREAD = re.compile(r"^(node|node\.labels\.[A-Za-z0-9_./-]+)$")


class ConstraintError(ValueError):
    pass


def parse_constraint(text: str) -> Constraint:
    match = _CONSTRAINT.match(text)
    if not match:
        raise ConstraintError(f"{text!r}: expected `node.labels.KEY == VALUE`, `node.name != NAME` or "
                              "`node.id == ID` (operators == and !=)")
    return Constraint(match.group(1), match.group(2), match.group(3))


def parse_spread(text: str) -> str:
    if not _SPREAD.match(text):
        raise ConstraintError(f"{text!r}: expected `node` or `node.labels.KEY`")
    return text


def attribute_of(node: Node, attribute: str) -> str | None:
    if attribute == "node":
        return node.id
    if attribute == "node.name":
        return node.name
    if attribute == "node.id":
        return node.id
    return node.labels.get(attribute.removeprefix("node.labels."))


def holds(constraint: Constraint, node: Node) -> bool:
    actual = attribute_of(node, constraint.attribute)
    return actual == constraint.value if constraint.op == "==" else actual != constraint.value
