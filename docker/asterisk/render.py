"""Render the Asterisk configuration of a container from its environment.

Usage: render.py RUN_DIR  (writes RUN_DIR/etc; Asterisk sees the same path).

The AMI and ARI passwords are the app's own CALLCENTER_AMI_PASSWORD and
CALLCENTER_ARI_PASSWORD, so docker/callcenter.env holds each secret once. The rest are PBX_*
variables (docker-compose.yml and docker/callcenter.env.example list them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from callcenter.channels.telephony.pbxconfig import AGENTS, PbxConfigError, PbxSettings, render


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise PbxConfigError(f"{name} is not set (see docker/callcenter.env.example)")
    return value


def settings_from_env(env: Mapping[str, str]) -> PbxSettings:
    def number(name: str, default: int) -> int:
        raw = env.get(name, "") or str(default)
        try:
            return int(raw)
        except ValueError:
            raise PbxConfigError(f"{name} must be a number, got {raw!r}") from None

    return PbxSettings(
        ami_secret=_required(env, "CALLCENTER_AMI_PASSWORD"),
        ari_password=_required(env, "CALLCENTER_ARI_PASSWORD"),
        agent_passwords={a: _required(env, f"PBX_AGENT_{a}_PASSWORD") for a in AGENTS},
        ami_username=env.get("CALLCENTER_AMI_USER") or "callcenter",
        ari_username=env.get("CALLCENTER_ARI_USER") or "callcenter",
        agi_port=number("CALLCENTER_AGI_PORT", 4573),
        sip_port=number("PBX_SIP_PORT", 5060),
        rtp_start=number("PBX_RTP_START", 10000),
        rtp_end=number("PBX_RTP_END", 10199),
        bind_address=_required(env, "PBX_BIND_ADDRESS"),
        ami_permit=_required(env, "PBX_AMI_PERMIT"),
        sip_bind_address=env.get("PBX_SIP_BIND_ADDRESS") or "0.0.0.0",
        public_address=_required(env, "PBX_PUBLIC_ADDRESS"),
        agi_host=_required(env, "PBX_AGI_HOST"),
        trunk_match=_required(env, "PBX_TRUNK_MATCH"),
        trunk_contact=env.get("PBX_TRUNK_CONTACT", ""),
        survey_enabled=env.get("PBX_SURVEY_ENABLED", "1") != "0",
        wrapup_seconds=number("PBX_WRAPUP_SECONDS", 15),
    )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = argv[1]
    try:
        render(settings_from_env(os.environ), Path(run_dir) / "etc", run_dir)
    except PbxConfigError as exc:
        print(f"render: error: {exc}", file=sys.stderr)
        return 2
    print(f"render: configuration written to {run_dir}/etc")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
