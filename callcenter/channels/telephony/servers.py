"""Several Asterisk servers feeding one dashboard: each has its own AMI connection, live state
and call recorder; the wallboard reads them side by side.

Queues are keyed by server (``msk/support`` beside ``spb/support``), not merged by name: two
PBXes have their own trunks, agents and service-level clocks, and a merged figure would hide
which site is short of agents or failing. Agents keep their endpoint (``PJSIP/1001``): an
agent's user account names one endpoint, so endpoint names must be unique across servers;
their queues carry the server prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from callcenter.bus import Bus
from callcenter.channels.telephony.state import AgentSnapshot, LiveState, QueueSnapshot
from callcenter.config import ConfigError, Settings
from callcenter.models import utcnow

_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,31}")
_ENTRY = re.compile(r"(?P<name>[^=]+)=(?P<host>[^:]+):(?P<port>\d{1,5}):(?P<user>\S+)")


@dataclass(frozen=True)
class AmiServer:
    name: str
    """Empty for the single server of ami_host/ami_port (its health entry is plain "ami")."""
    host: str
    port: int
    user: str
    password: str = field(repr=False)

    @property
    def health_name(self) -> str:
        return f"ami:{self.name}" if self.name else "ami"


def ami_servers(settings: Settings) -> list[AmiServer]:
    """The configured servers (none when telephony is off); ConfigError names what is wrong."""
    if not settings.ami_servers.strip():
        if not settings.ami_password:
            return []
        return [
            AmiServer("", settings.ami_host, settings.ami_port, settings.ami_user,
                      settings.ami_password)
        ]  # fmt: skip
    passwords = dict(settings.ami_server_passwords)
    servers: list[AmiServer] = []
    for item in (part.strip() for part in settings.ami_servers.split(",")):
        entry = _ENTRY.fullmatch(item)
        if entry is None or not _NAME.fullmatch(entry["name"].strip()):
            raise ConfigError(
                f"ami_servers: {item!r} is not name=host:port:user (name: a-z, 0-9, _)"
            )
        name = entry["name"].strip()
        if name in {s.name for s in servers}:
            raise ConfigError(f"ami_servers: {name!r} is listed twice")
        if not passwords.get(name):
            raise ConfigError(f"ami_servers: set CALLCENTER_AMI_PASSWORD_{name.upper()}")
        servers.append(AmiServer(name, entry["host"], int(entry["port"]), entry["user"],
                                 passwords[name]))  # fmt: skip
    return servers


def server_bus(main: Bus) -> Bus:
    """A bus of one server's own (its recorder hears only its calls); every event published
    on it is passed on to ``main`` for the screen-pops, wallboard and automation."""
    own = Bus()

    async def forward(event: object) -> None:
        main.publish(event)

    own.subscribe(object, forward)
    return own


class SideBySide:
    """The wallboard's figures (dashboard.wallboard.LiveFigures) of several servers."""

    def __init__(self, states: Mapping[str, LiveState]) -> None:
        self._states = states

    def queue_snapshots(self, now: datetime) -> list[QueueSnapshot]:
        return [
            replace(queue, name=f"{server}/{queue.name}")
            for server, state in self._states.items()
            for queue in state.queue_snapshots(now)
        ]

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        return [
            replace(
                agent,
                queues=tuple(f"{server}/{q}" for q in agent.queues),
                paused_queues=tuple(f"{server}/{q}" for q in agent.paused_queues),
                call_queue=agent.call_queue and f"{server}/{agent.call_queue}",
            )
            for server, state in self._states.items()
            for agent in state.agent_snapshots(now)
        ]


def held_elsewhere(
    states: Mapping[str, LiveState], reached: Collection[str]
) -> Callable[[str], str | None]:
    """A server outside ``reached`` (those with an ARI application: ari_urls, or ari_server)
    whose live state shows an endpoint, when none of the reached ones does; else None.
    Click-to-call must not ring such an agent through another server's ARI, where the same
    endpoint name may be someone else's phone."""

    def find(endpoint: str) -> str | None:
        now = utcnow()
        holding = [
            server
            for server, state in states.items()
            if any(a.interface == endpoint for a in state.agent_snapshots(now))
        ]
        return None if not holding or set(holding) & set(reached) else holding[0]

    return find
