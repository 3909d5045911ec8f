"""Render the Asterisk configuration templates (asterisk-config/, dialplan/) for one instance.

The templates hold the production structure; the values that differ per instance (ports,
secrets, contacts) come from `PbxSettings`. Secrets have no defaults: production passes its
own, tests and local runs use `PbxSettings.ephemeral()`, which picks free loopback ports and
random secrets.
"""

from __future__ import annotations

import ipaddress
import random
import re
import secrets
import socket
import string
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO_ROOT / "asterisk-config"
DIALPLAN_DIR = REPO_ROOT / "dialplan"
AGENTS = ("1001", "1002", "1003", "1004")
LOOPBACK = "127.0.0.1"
MANAGED_QUEUES = "queues_managed.conf"
"""Written by the queue admin screen (queueconf.py); rendered only when it is missing."""
WRAPUP_GLOBAL = "QUEUE_WRAPUP_SECONDS"
"""The dialplan global that tells the dashboard the queues' wrapuptime (AMI does not)."""


class PbxConfigError(ValueError):
    """The settings cannot produce a working configuration."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now (TCP by default, UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def free_udp_range(size: int, low: int = 20000, high: int = 40000) -> tuple[int, int]:
    """A run of `size` consecutive UDP ports on 127.0.0.1, all free right now."""
    for _ in range(100):
        start = random.randrange(low, high - size) & ~1  # RTP wants an even start
        socks: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return start, start + size - 1
    raise PbxConfigError(f"no run of {size} free UDP ports between {low} and {high}")


@dataclass(frozen=True)
class PbxSettings:
    """Everything that differs between two Asterisk instances."""

    ami_secret: str = field(repr=False)
    ari_password: str = field(repr=False)
    agent_passwords: dict[str, str] = field(repr=False)
    sip_port: int = 5060
    ami_port: int = 5038
    http_port: int = 8088
    rtp_start: int = 10000
    rtp_end: int = 10999
    agi_port: int = 4573
    ami_username: str = "callcenter"
    ari_username: str = "callcenter"
    ari_allowed_origins: str = "http://127.0.0.1"
    trunk_match: str = LOOPBACK
    # Where the trunk sends outbound calls, e.g. "sip:provider.example:5060" (optional).
    trunk_contact: str = ""
    # Static contacts for agents that do not register (test phones), by extension.
    agent_contacts: dict[str, str] = field(default_factory=dict)
    survey_enabled: bool = True
    # Seconds of wrap-up after each answered queue call (queues.conf wrapuptime).
    wrapup_seconds: int = 15
    # Where AMI and ARI listen and who may log in to AMI. Loopback unless Asterisk runs in a
    # container, where they listen on its address in the private network (docker-compose.yml).
    bind_address: str = LOOPBACK
    ami_permit: str = f"{LOOPBACK}/32"
    # Where SIP listens, and the address phones and the provider reach SIP and RTP at when
    # Asterisk is behind NAT (a container's published ports); empty: media on sip_bind_address.
    sip_bind_address: str = LOOPBACK
    public_address: str = ""
    # Where the dialplan finds the FastAGI server (callcenter serve or callcenter agi).
    agi_host: str = LOOPBACK

    @classmethod
    def ephemeral(cls, **overrides: object) -> PbxSettings:
        """Free loopback ports and random secrets: for tests and local runs."""
        rtp_start, rtp_end = free_udp_range(40)
        settings = cls(
            ami_secret=secrets.token_urlsafe(18),
            ari_password=secrets.token_urlsafe(18),
            agent_passwords={agent: secrets.token_urlsafe(12) for agent in AGENTS},
            sip_port=free_port(socket.SOCK_DGRAM),
            ami_port=free_port(),
            http_port=free_port(),
            rtp_start=rtp_start,
            rtp_end=rtp_end,
            agi_port=free_port(),
            wrapup_seconds=0,  # tests ring the next call at once unless they ask for wrap-up
        )
        return replace(settings, **overrides)  # type: ignore[arg-type]

    def validate(self) -> None:
        """Refuse values that would give a broken or unsafe configuration."""
        for name in ("ami_secret", "ari_password"):
            if len(getattr(self, name)) < 12:
                raise PbxConfigError(f"{name} must be at least 12 characters")
        missing = [a for a in AGENTS if len(self.agent_passwords.get(a, "")) < 8]
        if missing:
            raise PbxConfigError(f"agent passwords (8+ characters) missing for {missing}")
        if self.ari_allowed_origins.strip() in ("", "*"):
            raise PbxConfigError("ari_allowed_origins must name origins, not '*'")
        values = [self.ami_secret, self.ari_password, *self.agent_passwords.values()]
        values += [self.trunk_contact, self.trunk_match, *self.agent_contacts.values()]
        if any(ch in value for value in values for ch in "\r\n;[]"):
            raise PbxConfigError("settings must not contain line breaks, ';' or brackets")
        _ip_address("bind_address", self.bind_address)
        sip = _ip_address("sip_bind_address", self.sip_bind_address)
        if self.public_address:
            _ip_address("public_address", self.public_address)
        elif sip.is_unspecified:
            raise PbxConfigError("public_address is needed when SIP listens on every address")
        try:
            ipaddress.ip_network(self.ami_permit, strict=False)
        except ValueError:
            raise PbxConfigError(f"ami_permit is not a network: {self.ami_permit!r}") from None
        if not 0 <= self.wrapup_seconds <= 3600:
            raise PbxConfigError(f"wrapup_seconds must be 0 to 3600: {self.wrapup_seconds}")
        if not re.fullmatch(r"[A-Za-z0-9.:-]+", self.agi_host):
            raise PbxConfigError(f"agi_host is not a host name or address: {self.agi_host!r}")


def _ip_address(name: str, value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise PbxConfigError(f"{name} is not an IP address: {value!r}") from None


def placeholders(settings: PbxSettings, run_dir: str) -> dict[str, str]:
    """Template values; `run_dir` is the instance folder as Asterisk sees it."""
    values = {
        "RUN_DIR": run_dir,
        "SIP_PORT": str(settings.sip_port),
        "AMI_PORT": str(settings.ami_port),
        "HTTP_PORT": str(settings.http_port),
        "RTP_START": str(settings.rtp_start),
        "RTP_END": str(settings.rtp_end),
        "AMI_USERNAME": settings.ami_username,
        "AMI_SECRET": settings.ami_secret,
        "ARI_USERNAME": settings.ari_username,
        "ARI_PASSWORD": settings.ari_password,
        "ARI_ALLOWED_ORIGINS": settings.ari_allowed_origins,
        "TRUNK_MATCH": settings.trunk_match,
        "BIND_ADDRESS": settings.bind_address,
        "AMI_PERMIT": ipaddress.ip_network(settings.ami_permit, strict=False).with_netmask,
        "SIP_BIND_ADDRESS": settings.sip_bind_address,
        # Behind NAT, RTP listens on every address of the container and SDP names the public one.
        "MEDIA_ADDRESS": settings.public_address or settings.sip_bind_address,
        "BIND_RTP_TO_MEDIA": "no" if settings.public_address else "yes",
        "WRAPUP_SECONDS": str(settings.wrapup_seconds),
    }
    for agent, password in settings.agent_passwords.items():
        values[f"AGENT_{agent}_PASSWORD"] = password
    return values


def pjsip_local(settings: PbxSettings) -> str:
    """Contacts of this instance, appended to the aor sections of pjsip.conf."""
    lines = ["; Rendered per instance: contacts of this deployment or test run."]
    if settings.public_address:
        lines += [
            "[transport-udp](+type=transport)",
            f"external_signaling_address = {settings.public_address}",
            f"external_media_address = {settings.public_address}",
        ]
    if settings.trunk_contact:
        lines += ["[trunk](+type=aor)", f"contact = {settings.trunk_contact}"]
    for agent, contact in sorted(settings.agent_contacts.items()):
        if agent not in AGENTS:
            raise PbxConfigError(f"unknown agent {agent!r}; known: {', '.join(AGENTS)}")
        lines += [f"[{agent}](+type=aor)", f"contact = {contact}"]
    return "\n".join(lines) + "\n"


def dialplan_globals(settings: PbxSettings) -> str:
    return (
        "[globals]\n"
        f"AGI_HOST={settings.agi_host}\n"
        f"AGI_PORT={settings.agi_port}\n"
        f"SURVEY_ENABLED={1 if settings.survey_enabled else 0}\n"
        f"{WRAPUP_GLOBAL}={settings.wrapup_seconds}\n"
    )


def render(
    settings: PbxSettings,
    etc_dir: Path,
    run_dir: str,
    config_dir: Path = CONFIG_DIR,
    dialplan_dir: Path = DIALPLAN_DIR,
) -> None:
    """Write the complete configuration of one instance into `etc_dir`."""
    settings.validate()
    values = placeholders(settings, run_dir)
    etc_dir.mkdir(parents=True, exist_ok=True)
    for template in sorted(config_dir.glob("*.conf")):
        if template.name == MANAGED_QUEUES and (etc_dir / template.name).exists():
            continue  # the product's queues (/admin/queues) survive a re-render
        text = template.read_text(encoding="utf-8")
        try:
            rendered = string.Template(text).substitute(values)
        except (KeyError, ValueError) as exc:
            raise PbxConfigError(f"{template.name}: bad or unknown placeholder {exc}") from exc
        (etc_dir / template.name).write_text(rendered, encoding="utf-8")
    # The dialplan uses ${...} itself, so it is copied as is; its values are globals.
    for source in sorted(dialplan_dir.glob("*.conf")):
        (etc_dir / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (etc_dir / "extensions_globals.conf").write_text(dialplan_globals(settings), encoding="utf-8")
    (etc_dir / "pjsip_local.conf").write_text(pjsip_local(settings), encoding="utf-8")
