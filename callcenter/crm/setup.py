"""Choosing the deployment's CRM connector from the settings."""

from __future__ import annotations

import aiohttp

from callcenter.config import ConfigError, Settings
from callcenter.crm.base import Connector
from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.links import RecordingLinks
from callcenter.crm.lookup import CrmLookup
from callcenter.crm.zoho import ZohoCrm

PROVIDERS = ("bitrix24", "zoho")


def bitrix_users(text: str) -> dict[str, int]:
    """``login=id, login=id`` → {login: id}."""
    users = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        login, _, user_id = item.partition("=")
        if not (login.strip() and user_id.strip().isdigit()):
            raise ConfigError(f"bitrix24_users: {item!r} is not login=bitrix_user_id")
        users[login.strip()] = int(user_id)
    return users


def connector(settings: Settings, http: aiohttp.ClientSession) -> Connector | None:
    """The configured connector, None when no CRM is set; ConfigError when half-configured."""
    provider = settings.crm_provider
    if not provider:
        return None
    if provider == "bitrix24":
        if not (settings.bitrix24_portal and settings.bitrix24_webhook_code):
            raise ConfigError(
                "crm_provider bitrix24 needs bitrix24_portal and the secret bitrix24_webhook_code"
            )
        return Bitrix24(
            http,
            settings.bitrix24_portal,
            settings.bitrix24_user_id,
            settings.bitrix24_webhook_code,
            users=bitrix_users(settings.bitrix24_users),
        )
    if provider == "zoho":
        if not (
            settings.zoho_client_id and settings.zoho_client_secret and settings.zoho_refresh_token
        ):
            raise ConfigError(
                "crm_provider zoho needs zoho_client_id and the secrets zoho_client_secret "
                "and zoho_refresh_token"
            )
        return ZohoCrm(
            http,
            accounts_url=settings.zoho_accounts_url,
            api_url=settings.zoho_api_url,
            client_id=settings.zoho_client_id,
            client_secret=settings.zoho_client_secret,
            refresh_token=settings.zoho_refresh_token,
        )
    raise ConfigError(f"crm_provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")


def lookup(settings: Settings, crm: Connector) -> CrmLookup:
    return CrmLookup(
        crm, timeout=settings.crm_lookup_timeout_ms / 1000, ttl=settings.crm_cache_seconds
    )


def recording_links(settings: Settings) -> RecordingLinks | None:
    """Signed recording links, when there is an address to put in them and a key to sign with."""
    if not (settings.public_url and settings.session_key):
        return None
    return RecordingLinks(settings.public_url, settings.session_key)
