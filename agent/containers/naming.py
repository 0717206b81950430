"""Generated container names (`brave_otter`), Docker style: readable in `ps`, unique per agent."""

from __future__ import annotations

import secrets

ADJECTIVES = ("agile", "bold", "brave", "calm", "clever", "eager", "fair", "gentle", "happy", "keen", "lucid",
              "merry", "nimble", "proud", "quick", "quiet", "shy", "steady", "swift", "wise")
NOUNS = ("anchovy", "barracuda", "carp", "dolphin", "eel", "flounder", "grouper", "herring", "marlin", "minnow",
         "octopus", "otter", "perch", "pike", "salmon", "sardine", "seal", "shark", "trout", "tuna")


def generate(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(NOUNS)}"
        if name not in taken:
            return name
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(NOUNS)}_{secrets.token_hex(3)}"
