"""Choosing the CRM from the settings: TOML for the ordinary part, secrets only from the env."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from callcenter.config import ConfigError, load_settings
from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.setup import connector, lookup
from callcenter.crm.zoho import ZohoCrm

CONFIG = """
[crm]
provider = "bitrix24"
lookup_timeout_ms = 250
[bitrix24]
portal = "https://shop.bitrix24.ru"
user_id = 7
users = "petrov=22, ivanova = 31"
[zoho]
client_id = "1000.ABC"
api_url = "https://www.zohoapis.eu"
accounts_url = "https://accounts.zoho.eu"
"""


async def test_bitrix24_from_the_config_file_and_its_code_from_the_environment(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = tmp_path / "callcenter.toml"
    config.write_text(CONFIG)
    env = {"CALLCENTER_CONFIG": str(config), "CALLCENTER_BITRIX24_WEBHOOK_CODE": "abc123"}
    settings = load_settings(env)

    crm = connector(settings, http)

    assert isinstance(crm, Bitrix24)
    assert crm.base == "https://shop.bitrix24.ru/rest/7/abc123/" and crm.user_id == 7
    assert crm.users == {"petrov": 22, "ivanova": 31}
    assert "abc123" not in repr(settings)
    assert lookup(settings, crm).timeout == 0.25


async def test_zoho_needs_its_secrets_and_refuses_them_in_the_config_file(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    config = tmp_path / "callcenter.toml"
    config.write_text(CONFIG.replace('provider = "bitrix24"', 'provider = "zoho"'))
    env = {"CALLCENTER_CONFIG": str(config)}
    with pytest.raises(ConfigError, match="zoho_client_secret"):
        connector(load_settings(env), http)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[zoho]\nclient_secret = "s"\nrefresh_token = "1000.r"\n')
    crm = connector(load_settings({**env, "CALLCENTER_SECRETS_FILE": str(secrets)}), http)
    assert isinstance(crm, ZohoCrm) and crm.api_url == "https://www.zohoapis.eu"

    leaky = tmp_path / "leaky.toml"
    leaky.write_text(CONFIG + 'refresh_token = "x"\n')  # lands in [zoho]
    with pytest.raises(ConfigError, match="zoho_refresh_token"):
        load_settings({"CALLCENTER_CONFIG": str(leaky)})


async def test_no_provider_is_no_crm_and_an_unknown_one_is_an_error(
    http: aiohttp.ClientSession,
) -> None:
    assert connector(load_settings({}), http) is None
    with pytest.raises(ConfigError, match="bitrix24 needs"):
        connector(load_settings({"CALLCENTER_CRM_PROVIDER": "bitrix24"}), http)
    with pytest.raises(ConfigError, match="must be one of bitrix24, zoho"):
        connector(load_settings({"CALLCENTER_CRM_PROVIDER": "amocrm"}), http)


async def test_a_malformed_bitrix24_user_map_is_refused(http: aiohttp.ClientSession) -> None:
    env = {
        "CALLCENTER_CRM_PROVIDER": "bitrix24",
        "CALLCENTER_BITRIX24_PORTAL": "https://shop.bitrix24.ru",
        "CALLCENTER_BITRIX24_WEBHOOK_CODE": "abc123",
        "CALLCENTER_BITRIX24_USERS": "petrov=22, ivanova",
    }
    with pytest.raises(ConfigError, match="'ivanova' is not login=bitrix_user_id"):
        connector(load_settings(env), http)
