"""The rendered Asterisk configuration listens on loopback only and grants little."""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

import pytest

from callcenter.channels.telephony.pbxconfig import (
    CONFIG_DIR,
    PbxConfigError,
    PbxSettings,
    render,
)
from tests.telephony.conftest import Pbx


def read_conf(path: Path) -> configparser.ConfigParser:
    """Asterisk's ini dialect, close enough for these checks (`=>` and `(template)` aside)."""
    parser = configparser.ConfigParser(
        strict=False,
        interpolation=None,
        comment_prefixes=(";", "#"),
        inline_comment_prefixes=(";",),
    )
    text = path.read_text(encoding="utf-8").replace("=>", "=")
    text = re.sub(r"^\[([^\]]+)\]\([^)]*\)", r"[\1]", text, flags=re.M)
    parser.read_string(text)
    return parser


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[PbxSettings, Path]:
    settings = PbxSettings.ephemeral(agent_contacts={"1001": "sip:1001@127.0.0.1:5071"})
    etc = tmp_path_factory.mktemp("etc")
    render(settings, etc, "/opt/cc/test")
    return settings, etc


def test_every_listener_binds_loopback(rendered):
    settings, etc = rendered
    assert read_conf(etc / "manager.conf")["general"]["bindaddr"] == "127.0.0.1"
    assert read_conf(etc / "http.conf")["general"]["bindaddr"] == "127.0.0.1"
    pjsip = read_conf(etc / "pjsip.conf")
    binds = [s["bind"] for s in pjsip.values() if s.get("type") == "transport"]
    assert binds == [f"127.0.0.1:{settings.sip_port}"]
    endpoints = [s for s in pjsip.values() if s.get("type") == "endpoint"]
    assert endpoints and all(e["media_address"] == "127.0.0.1" for e in endpoints)
    assert all(e["bind_rtp_to_media_address"] == "yes" for e in endpoints)


def test_ami_user_has_no_blanket_rights(rendered):
    settings, etc = rendered
    manager = read_conf(etc / "manager.conf")
    user = manager[settings.ami_username]
    for key in ("read", "write"):
        classes = {c.strip() for c in user[key].split(",")}
        assert "all" not in classes, f"{key} = {user[key]}"
    assert not {"system", "command", "config"} & {c.strip() for c in user["write"].split(",")}
    assert user["deny"] == "0.0.0.0/0.0.0.0"
    assert user["permit"].startswith("127.0.0.1")
    assert int(manager["general"]["authtimeout"]) > 0
    assert int(manager["general"]["authlimit"]) > 0


def test_ari_origins_are_named(rendered):
    _, etc = rendered
    origins = read_conf(etc / "ari.conf")["general"]["allowed_origins"]
    assert origins.strip() and "*" not in origins


def test_secrets_come_from_settings_only(rendered):
    settings, etc = rendered
    assert read_conf(etc / "manager.conf")[settings.ami_username]["secret"] == settings.ami_secret
    templates = "".join(p.read_text(encoding="utf-8") for p in CONFIG_DIR.glob("*.conf"))
    assert settings.ami_secret not in templates
    assert not re.search(r"^\s*(secret|password)\s*=\s*[^$\s]", templates, flags=re.M)
    for path in etc.glob("*.conf"):
        # The dialplan and the CDR mapping use Asterisk's own ${...} (escaped as $${ there).
        if not path.name.startswith(("extensions", "cdr_custom")):
            assert "${" not in path.read_text(encoding="utf-8"), path.name


def test_unsafe_settings_are_refused(tmp_path):
    with pytest.raises(PbxConfigError, match="origins"):
        render(PbxSettings.ephemeral(ari_allowed_origins="*"), tmp_path, "/x")
    with pytest.raises(PbxConfigError, match="ami_secret"):
        render(PbxSettings.ephemeral(ami_secret="short"), tmp_path, "/x")
    with pytest.raises(PbxConfigError, match="line breaks"):
        render(PbxSettings.ephemeral(trunk_contact="sip:a\n[evil]"), tmp_path, "/x")


def sockets_of(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, address, port) of the sockets a process has bound, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode not in inodes or (proto.startswith("tcp") and state != "0A"):  # 0A: LISTEN
                continue
            address, port = local.split(":")
            found.append((proto, address, int(port, 16)))
    return found


LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net shows it


@pytest.mark.asterisk
def test_running_asterisk_listens_on_loopback_only(pbx: Pbx):
    settings = pbx.process.settings
    found = sockets_of(pbx.process.pid)
    tcp = [s for s in found if s[0].startswith("tcp")]
    assert {port for _, _, port in tcp} == {settings.ami_port, settings.http_port}
    assert all(address == LOOPBACK for _, address, _ in tcp), tcp
    # PJSIP's DNS client also holds two UDP sockets on the wildcard address at ephemeral
    # ports (pjlib binds its resolver that way, with no option to change it); they are not
    # service ports, so only the configured SIP and RTP ports are checked here.
    configured = {settings.sip_port, *range(settings.rtp_start, settings.rtp_end + 1)}
    udp_configured = [s for s in found if s[0].startswith("udp") and s[2] in configured]
    assert ("udp", LOOPBACK, settings.sip_port) in udp_configured
    assert all(address == LOOPBACK for _, address, _ in udp_configured), udp_configured
