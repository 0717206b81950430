"""The agent's iptables rules: its own chains (named after its bridge), hooked into the built-in
chains once, replaced as a whole with `iptables-restore --noflush` whenever published ports
change, and removed at teardown. Uses whichever `iptables` the host has (nf_tables backend on
Debian 12 and current Ubuntu), so the rules show up in `iptables -S` like Docker's."""

from __future__ import annotations

import asyncio
import subprocess

from agent.errors import Unavailable
from agent.network.plan import Chains


async def _iptables(*args: str, stdin: str | None = None, check: bool = True) -> bool:
    command = ["iptables-restore", "--noflush"] if stdin is not None else ["iptables", "-w", *args]
    try:
        done = await asyncio.to_thread(subprocess.run, command, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise Unavailable(f"{command[0]} is not installed (Debian/Ubuntu: apt-get install iptables)") from None
    if check and done.returncode != 0:
        raise Unavailable(f"{' '.join(command[:4])}: {done.stderr.strip() or 'failed'}")
    return done.returncode == 0


class Firewall:
    def __init__(self, chains: Chains) -> None:
        self.chains = chains

    async def apply(self, rules: str) -> None:
        """Replaces the agent's chains with `rules`, then makes sure each is hooked in (once).
        Callers serialise their calls (the network manager's rules lock)."""
        await _iptables(stdin=rules)
        for table, chain, rule in self.chains.jumps():
            if not await _iptables("-t", table, "-C", chain, *rule, check=False):
                await _iptables("-t", table, "-I", chain, "1", *rule)

    async def remove(self) -> None:
        for table, chain, rule in self.chains.jumps():
            while await _iptables("-t", table, "-D", chain, *rule, check=False):
                pass
        for table, chain in (("nat", self.chains.nat_post), ("nat", self.chains.nat_ports),
                             ("filter", self.chains.forward)):
            if await _iptables("-t", table, "-F", chain, check=False):
                await _iptables("-t", table, "-X", chain, check=False)
