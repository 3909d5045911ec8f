"""Queues managed on /admin/queues: validation, rendering to ``queues_managed.conf`` and the
reload through AMI.

``queues.conf`` keeps ``[general]``, the templates ``[queue-common](!)`` (all but the
strategy: app_queue takes a queue's first ``strategy`` line, a template's if it has one) and
``[queue-defaults](!,queue-common)``, the shipped ``support`` and ``sales``, and includes
``queues_managed.conf``, whose queues build on ``queue-common``. Only that file is written: an
install's hand-edited queues keep working, and a managed queue can never shadow one of them
(names defined in ``queues.conf`` are refused). Every value written is checked against a closed
form here (names ``[a-z0-9_-]``, known strategies, bounded integers, ``PJSIP/<name>``
interfaces, member names without control characters or config syntax), so nothing an admin
types can add a line or a section.

``QueueReload`` (``Queue``, ``Members``, ``Parameters``) needs no manager.conf write class in
Asterisk 22 (its privilege is ``<none>``); it re-reads the one queue: a new section becomes a
queue, a vanished one is removed, and static members are replaced while agents who logged in
(dynamic members) stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import CONFIG_DIR
from callcenter.channels.telephony.state import QueueSettings
from callcenter.models import Queue

log = logging.getLogger(__name__)

TEMPLATE = "queue-common"
STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
RESERVED = frozenset({"general", TEMPLATE, "queue-defaults"})
MAX_MEMBERS = 200

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_INTERFACE = re.compile(r"PJSIP/[A-Za-z0-9_-]{1,40}")
_NUMBER = re.compile(r"[0-9]{3,15}")
_SECTION = re.compile(r"^\s*\[([^\]]+)\]", re.M)
# Member names go between commas of ``member =>``; config syntax and control characters out.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f,;\[\]\\\"=]")

LIMITS = {
    "service_level_seconds": (1, 3600),
    "ring_timeout_seconds": (1, 300),
    "wrapup_seconds": (0, 3600),
    "max_callers": (0, 10000),
    "penalty": (0, 100),
}


class QueueConfigError(ValueError):
    """One or more fields are invalid: ``errors`` maps a field to a message key."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class ApplyError(Exception):
    """The file was written but Asterisk did not take it (or could not be reached)."""


@dataclass(frozen=True)
class Member:
    interface: str
    penalty: int = 0
    name: str = ""


@dataclass(frozen=True)
class QueueDefinition:
    """What queues_managed.conf says about one queue."""

    name: str
    strategy: str = "rrmemory"
    ring_timeout_seconds: int = 15
    wrapup_seconds: int | None = None
    max_callers: int = 0
    service_level_seconds: int = 20
    members: tuple[Member, ...] = field(default=())


def check_name(name: str, taken: Iterable[str] = ()) -> str | None:
    """The message key for a bad new queue name, or None when it may be used."""
    if not _NAME.fullmatch(name) or name in RESERVED:
        return "queues.bad_name"
    if name in set(taken):
        return "queues.name_taken"
    return None


def _in_range(errors: dict[str, str], key: str, value: int | None, field_name: str = "") -> None:
    if value is None:
        return
    low, high = LIMITS[key]
    if not low <= value <= high:
        errors[field_name or key] = "queues.out_of_range"


def validate(queue: QueueDefinition) -> None:
    """Raise QueueConfigError unless every value can be written as it is."""
    errors: dict[str, str] = {}
    if not _NAME.fullmatch(queue.name) or queue.name in RESERVED:
        errors["name"] = "queues.bad_name"
    if queue.strategy not in STRATEGIES:
        errors["strategy"] = "queues.bad_strategy"
    for key in ("service_level_seconds", "ring_timeout_seconds", "max_callers"):
        _in_range(errors, key, getattr(queue, key))
    _in_range(errors, "wrapup_seconds", queue.wrapup_seconds)
    if len(queue.members) > MAX_MEMBERS:
        errors["members"] = "queues.too_many_members"
    seen: set[str] = set()
    for member in queue.members:
        if not _INTERFACE.fullmatch(member.interface) or member.interface in seen:
            errors["members"] = "queues.bad_member"
        seen.add(member.interface)
        _in_range(errors, "penalty", member.penalty, "members")
        if len(member.name) > 80 or _UNSAFE_TEXT.search(member.name):
            errors["members"] = "queues.bad_member"
    if errors:
        raise QueueConfigError(errors)


def inbound_number(text: str) -> str | None:
    """A queue's dialled number as the trunk sends it, digits only: the form may add a
    leading ``+``, spaces, dashes, dots and brackets. None for a blank field; ValueError when
    it is not 3 to 15 digits (the numbers the dialplan's ``from-trunk`` accepts). No country
    rules: the number is matched exactly as the provider dials it (``+7495...`` and
    ``7495...`` are the same, ``8495...`` is another)."""
    text = text.strip()
    if not text:
        return None
    digits = re.sub(r"[ ().-]", "", text.removeprefix("+"))
    if not _NUMBER.fullmatch(digits):
        raise ValueError(text)
    return digits


def member_name(text: str) -> str:
    """A staff member's name as a ``member =>`` line can carry it (config syntax removed)."""
    return " ".join(_UNSAFE_TEXT.sub(" ", text).split())[:80]


def parse_int(value: object, *, blank: int | None = None) -> int | None:
    """A form's integer field: blank gives ``blank``; anything not a plain number raises."""
    text = str(value if value is not None else "").strip()
    if not text:
        return blank
    if not re.fullmatch(r"-?[0-9]{1,9}", text):
        raise ValueError(text)
    return int(text)


def render_queue(queue: QueueDefinition) -> str:
    validate(queue)
    lines = [
        f"[{queue.name}]({TEMPLATE})",
        f"strategy = {queue.strategy}",
        f"timeout = {queue.ring_timeout_seconds}",
        f"servicelevel = {queue.service_level_seconds}",
        f"maxlen = {queue.max_callers}",
    ]
    if queue.wrapup_seconds is not None:
        lines.append(f"wrapuptime = {queue.wrapup_seconds}")
    for member in queue.members:
        name = member.name or member.interface.partition("/")[2]
        lines.append(f"member => {member.interface},{member.penalty},{name}")
    return "\n".join(lines) + "\n"


def render_queues(queues: Sequence[QueueDefinition]) -> str:
    """The whole queues_managed.conf, queues in name order."""
    names = [q.name for q in queues]
    if len(set(names)) != len(names):
        raise QueueConfigError({"name": "queues.name_taken"})
    head = "; Written by callcenter (/admin/queues). Edits here are overwritten on the next save.\n"
    body = "\n".join(render_queue(q) for q in sorted(queues, key=lambda q: q.name))
    return head + ("\n" + body if body else "")


def sections(text: str) -> set[str]:
    """Section names a config file defines (for queues.conf: its queues and templates)."""
    without_comments = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    return {name.strip() for name in _SECTION.findall(without_comments)}


def shipped_sections(queues_conf: Path | None = None) -> set[str]:
    """Sections of the queues.conf Asterisk reads; the repository's when that one cannot be
    read (or none is configured)."""
    if queues_conf is not None:
        try:
            return sections(queues_conf.read_text(encoding="utf-8"))
        except OSError:
            pass
    return sections((CONFIG_DIR / "queues.conf").read_text(encoding="utf-8"))


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, so Asterisk never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def reload_action(queue: str | None) -> dict[str, str]:
    """QueueReload of one queue, or of every queue (None: new, changed and vanished ones)."""
    action = {"Action": "QueueReload", "Members": "yes", "Parameters": "yes"}
    if queue is None:
        return action
    if not _NAME.fullmatch(queue) or queue in RESERVED:
        raise ValueError(f"not a queue name: {queue!r}")
    return {**action, "Queue": queue}


class ActionSender(Protocol):
    async def send_action(
        self, action: Mapping[str, str], *, timeout: float = ..., as_list: bool | None = ...
    ) -> Any:
        """Returns a response with ``ok`` and ``headers`` (ami.AmiResponse)."""


class QueueApplier:
    """Writes queues_managed.conf into Asterisk's config directory and reloads the queue that
    changed on every AMI connection given (one per Asterisk server reading that file)."""

    def __init__(self, path: Path, amis: Sequence[ActionSender], timeout: float = 5.0) -> None:
        self.path = path
        self._amis = amis
        self._timeout = timeout
        self.lock = asyncio.Lock()
        """Held from reading the queues to writing them, so an older read never overwrites a
        newer one (two admins saving at once in this process)."""

    def shipped(self) -> set[str]:
        """Sections of the queues.conf beside the managed file: names a new queue may not take."""
        return shipped_sections(self.path.with_name("queues.conf"))

    @property
    def amis(self) -> Sequence[ActionSender]:
        return self._amis

    async def apply(
        self,
        queues: Sequence[QueueDefinition],
        changed: str | None,
        amis: Sequence[ActionSender] | None = None,
    ) -> None:
        """Write ``queues`` and reload ``changed`` (None: every queue) on ``amis`` (default:
        all of them)."""
        try:
            write_atomically(self.path, render_queues(queues))
        except OSError as exc:  # Asterisk's config directory not writable here, or full
            raise ApplyError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        action = reload_action(changed)
        for ami in self._amis if amis is None else amis:
            try:
                response = await ami.send_action(action, timeout=self._timeout, as_list=False)
            except (ConnectionError, TimeoutError) as exc:
                raise ApplyError(str(exc) or type(exc).__name__) from exc
            if not response.ok:
                raise ApplyError(response.headers.get("Message") or "refused")


def definition_of(queue: Queue) -> QueueDefinition:
    """What queues_managed.conf says about a managed row of the queues table."""
    return QueueDefinition(
        name=queue.name,
        strategy=queue.strategy,
        ring_timeout_seconds=queue.ring_timeout_seconds,
        wrapup_seconds=queue.wrapup_seconds,
        max_callers=queue.max_callers,
        service_level_seconds=queue.service_level_seconds,
        members=tuple(Member(m.interface, m.penalty, m.member_name) for m in queue.members),
    )


class Connection(ActionSender, Protocol):
    @property
    def connected(self) -> bool: ...

    logins: int


class ReapplyAtLogin:
    """Writes every managed queue and reloads all queues whenever an AMI connection logs in
    (serve's start, Asterisk's restart, a reconnect): a save that was "not applied" because
    Asterisk was away reaches it, and a restarted Asterisk has the current file."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        applier: QueueApplier,
        amis: Sequence[Connection],
        interval: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._applier = applier
        self._amis = amis
        self.interval = interval
        self.applied = 0
        """Completed re-applies (one per login of each connection)."""

    async def apply(self, ami: Connection) -> bool:
        try:
            async with self._applier.lock, self._sessions() as db:
                managed = await db.scalars(select(Queue).where(Queue.managed.is_(True)))
                await self._applier.apply([definition_of(q) for q in managed], None, [ami])
        except (ApplyError, SQLAlchemyError, OSError) as exc:
            log.warning("managed queues not re-applied after an AMI login: %s", exc)
            return False
        self.applied += 1
        log.info("managed queues re-applied (AMI login %d)", ami.logins)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: re-apply once per new login (retried while it fails)."""
        seen = [0] * len(self._amis)
        while not stop.is_set():
            for i, ami in enumerate(self._amis):
                logins = ami.logins
                if logins != seen[i] and ami.connected and await self.apply(ami):
                    seen[i] = logins
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)


def settings_of(queue: Queue) -> QueueSettings:
    """The live state's figures for a row of the queues table."""
    return QueueSettings(
        service_level_seconds=queue.service_level_seconds,
        abandoned_in_service_level=queue.abandoned_in_service_level,
        wrapup_seconds=queue.wrapup_seconds or 0,  # 0: the server-wide wrap-up
    )


class ConfigurableState(Protocol):
    def configure_queue(self, name: str, settings: QueueSettings | None) -> None: ...


class LiveQueueSettings:
    """The live states (one per Asterisk server) that take a queue's saved settings at once,
    so the wallboard's service level follows an edit without restarting serve."""

    def __init__(self, states: Sequence[ConfigurableState]) -> None:
        self._states = states

    def update(self, queue: Queue, *, deleted: bool = False) -> None:
        settings = None if deleted else settings_of(queue)
        for state in self._states:
            state.configure_queue(queue.name, settings)
