"""The callback settings: retry policy and the customer's dial string from the config file
and environment, checked; whose failure an ended attempt was; which server's agents ring."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.automation.callbacks import CallbackPolicy, DialOutcome
from callcenter.channels.telephony.dialler import (
    NOBODY_ANSWERED,
    _failure,
    ari_urls,
    customer_dial,
)
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.config import ConfigError, Settings, load_settings
from callcenter.serve import serve


def test_the_policy_and_dial_string_come_from_the_config_file_and_environment(
    tmp_path: Path,
) -> None:
    config = tmp_path / "callcenter.toml"
    config.write_text(
        "[callback]\nmax_attempts = 5\nretry_minutes = 40\nlease_seconds = 600\n"
        'customer_dial = "SIP/mts/{number}"\n'
    )
    settings = load_settings(
        {"CALLCENTER_CONFIG": str(config), "CALLCENTER_CALLBACK_AGENT_RETRY_SECONDS": "90"}
    )
    assert CallbackPolicy.from_settings(settings) == CallbackPolicy(
        max_attempts=5,
        retry_after=timedelta(minutes=40),
        agent_retry_after=timedelta(seconds=90),
        lease=timedelta(minutes=10),
    )
    assert customer_dial(settings) == "SIP/mts/{number}"
    assert CallbackPolicy.from_settings(Settings()) == CallbackPolicy()
    assert customer_dial(Settings()) == "PJSIP/{number}@trunk"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("callback_max_attempts", 0),
        ("callback_max_attempts", 21),
        ("callback_retry_minutes", 0),
        ("callback_agent_retry_seconds", 1),
        ("callback_lease_seconds", 30),
    ],
)
def test_a_policy_value_out_of_range_is_refused_by_name(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=name):
        CallbackPolicy.from_settings(Settings(**{name: value}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dial",
    ["PJSIP/trunk", "{number}", "PJSIP/{number}@trunk {number}", "PJSIP/{number}/{number}", ""],
)
def test_a_dial_string_without_one_number_or_technology_is_refused(dial: str) -> None:
    with pytest.raises(ConfigError, match="callback_customer_dial"):
        customer_dial(Settings(callback_customer_dial=dial))


@pytest.mark.parametrize(
    ("reason", "agent_rang", "customer_rung", "outcome"),
    [
        ("agent: User busy", True, False, DialOutcome.AGENT_MISSED),
        ("ARI 404: endpoint not found", False, False, DialOutcome.AGENT_MISSED),
        (NOBODY_ANSWERED, True, False, DialOutcome.AGENT_MISSED),
        (NOBODY_ANSWERED, True, True, DialOutcome.NO_ANSWER),
        ("customer: No user responding", True, True, DialOutcome.NO_ANSWER),
        ("customer: Normal Clearing", True, True, DialOutcome.NO_ANSWER),
        ("customer: left", True, True, DialOutcome.NO_ANSWER),
        ("customer: User busy", True, True, DialOutcome.BUSY),
        ("customer: Unallocated (unassigned) number", True, True, DialOutcome.FAILED),
        ("customer: Circuit/channel congestion", True, True, DialOutcome.FAILED),
        ("ARI 500: allocation failed", True, False, DialOutcome.FAILED),
    ],
)
def test_whose_failure_an_attempt_was(
    reason: str, agent_rang: bool, customer_rung: bool, outcome: DialOutcome
) -> None:
    assert _failure(reason, agent_rang, customer_rung) is outcome


def test_each_server_is_dialled_through_its_own_ari_or_only_the_ari_servers_agents() -> None:
    servers = ["msk", "spb"]
    assert ari_urls(Settings(), servers) == {"msk": "http://127.0.0.1:8088"}
    assert ari_urls(Settings(ari_server="spb"), servers) == {"spb": "http://127.0.0.1:8088"}
    assert ari_urls(Settings(), []) == {"": "http://127.0.0.1:8088"}
    with pytest.raises(ConfigError, match="ari_server: 'kzn' is none of ami_servers"):
        ari_urls(Settings(ari_server="kzn"), servers)
    both = Settings(ari_urls="msk=http://10.0.0.1:8088, spb=https://10.0.1.1:8089")
    assert ari_urls(both, servers) == {
        "msk": "http://10.0.0.1:8088",
        "spb": "https://10.0.1.1:8089",
    }
    for wrong in ("kzn=http://10.0.2.1:8088", "msk=10.0.0.1:8088", "msk=http://a,msk=http://b"):
        with pytest.raises(ConfigError, match="ari_urls"):
            ari_urls(Settings(ari_urls=wrong), servers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("callback_customer_dial", "PJSIP/trunk", "callback_customer_dial"),
        ("callback_retry_minutes", 0, "callback_retry_minutes"),
        ("ari_server", "kzn", "ari_server"),
        ("ari_urls", "kzn=http://127.0.0.1:8088", "ari_urls"),
    ],
)
async def test_callcenter_serve_refuses_to_start_with_a_bad_callback_setting(
    database_url: str, tmp_path: Path, setting: str, value: object, named: str
) -> None:
    """Checked before anything runs (the CLI prints the error), not in a restart loop."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        ami_password="secret",  # telephony on; nothing is connected before the check
        ari_password="secret",
        session_key="x" * 48,
        **{setting: value},  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigError, match=named):
        await asyncio.wait_for(serve(settings, "127.0.0.1", free_port(), asyncio.Event()), 30)
