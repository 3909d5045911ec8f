"""Settings: defaults < TOML config file < ``CALLCENTER_*`` environment.

Secrets come only from the environment or a secrets file (``CALLCENTER_SECRETS_FILE``, TOML);
a secret written into the ordinary config file is refused, so a config file can be shared
or committed without leaking anything.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "CALLCENTER_"
AMI_SERVER_PASSWORD = "ami_password_"
"""``CALLCENTER_AMI_PASSWORD_<NAME>``: the password of the ami_servers entry ``name``."""
SECRET_FIELDS = frozenset(
    {
        "ami_password",
        "ari_password",
        "telegram_token",
        "telegram_webhook_secret",
        "smtp_password",
        "imap_password",
        "session_key",
        "metrics_token",
        "bitrix24_webhook_code",
        "zoho_client_secret",
        "zoho_refresh_token",
    }
)


class ConfigError(ValueError):
    """The configuration is unusable; the message says which setting and why."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    default_region: str = "RU"
    timezone: str = "Europe/Moscow"
    language: str = "ru"

    web_host: str = "127.0.0.1"
    web_port: int = 8080
    public_url: str = ""
    """The address customers and agents reach the web app at (links in emails)."""
    trusted_proxies: str = ""
    """Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and
    X-Forwarded-Proto are believed (the client address for the login limiter and audit)."""
    business_hours: str = "mon-fri 09:00-18:00"
    auto_emails_per_hour: int = 5
    """At most this many automatic emails to one address per hour (mail-loop guard)."""
    wrapup_dispositions: str = "Вопрос решён,Нужен перезвон,Передано в отдел,Жалоба,Ошибся номером"
    """Comma-separated outcomes an agent picks from in the after-call wrap-up form."""

    # The supervisor's wallboard ([wallboard] in the config file). A queue's service-level
    # threshold in seconds stays Asterisk's (servicelevel in queues.conf).
    wallboard_service_level_target: int = 80
    """Percent answered within the queue's threshold; a queue under it is coloured."""
    wallboard_long_wait_seconds: int = 60
    """A caller waiting this long or longer is coloured."""
    wallboard_repeat_contact_goal: int = 5
    wallboard_repeat_contact_alarm: int = 15
    """Percent of solved tickets followed by a new contact about the same issue within 7 days."""
    wallboard_answer_promise_minutes: int = 120
    """The first answer to a Telegram or email message is promised within this time."""

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "callcenter"
    ami_servers: str = ""
    """Several Asterisk servers feeding one dashboard: comma-separated ``name=host:port:user``,
    each password in ``CALLCENTER_AMI_PASSWORD_<NAME>``. Empty: the one server above."""
    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "callcenter"
    ari_app: str = "callcenter"
    ari_server: str = ""
    """With several ami_servers: the entry whose Asterisk ari_url reaches (default the first).
    Callbacks ring only its agents: an agent's endpoint exists on their own server only."""
    ari_urls: str = ""
    """With several ami_servers: ``name=http://host:8088, ...``, the ARI of each entry (same
    ari_user, ari_password and ari_app on each). Callbacks then ring free agents of every one
    of them, each call placed through the agent's own server. Empty: ari_url and ari_server."""
    queue_log_path: str = ""
    """Asterisk's queue_log file, readable here (docker-compose: the pbxlog volume): after each
    AMI login the queue calls that ended while disconnected are recorded from it. With several
    ami_servers, ``{server}`` stands for the entry's name. Empty: such calls are not recovered."""
    cdr_path: str = ""
    """Asterisk's CDR file that asterisk-config/cdr_custom.conf writes (``log/cdr.csv`` in its
    run folder; docker-compose: the pbxlog volume): after each AMI login the inbound calls that
    ended while disconnected without reaching a queue (hung up in the greeting, rejected,
    answered by the preferred agent) are recorded from it. ``{server}`` as in queue_log_path.
    Empty: such calls are not recovered."""
    queues_config_path: str = ""
    """Where /admin/queues writes queues_managed.conf: a path in Asterisk's config directory as
    this process sees it (``/etc/asterisk/queues_managed.conf``), then reloads the queue through
    AMI. Empty: queue settings are saved in the database only."""
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573

    # Callbacks ([callback] in the config file) and the customer's leg of outbound calls.
    callback_max_attempts: int = 3
    """Customer rings (no answer, busy, failed) before a callback is given up as failed."""
    callback_retry_minutes: int = 15
    """The wait before ringing a customer again after no answer, busy or failed."""
    callback_agent_retry_seconds: int = 30
    """The wait after the agent's phone missed the call (not counted as an attempt); the
    agent is not offered another callback for as long."""
    callback_lease_seconds: int = 300
    """A dialler's claim on a callback; renewed during the call, it lapses if the dialler dies."""
    callback_customer_dial: str = "PJSIP/{number}@trunk"
    """How Asterisk dials the customer for callbacks and click-to-call; ``{number}`` is the
    E.164 number (``+79161234567``)."""

    outbox_lease_seconds: int = 60
    """A worker's claim on an outbox row it sends; a killed worker's rows are sent again by
    another once it lapses, so it must outlast one send (a slow SMTP server included)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_from: str = "support@example.com"
    imap_host: str = "127.0.0.1"
    imap_port: int = 993
    imap_user: str = ""
    imap_security: str = "tls"
    """tls (port 993), starttls (port 143) or none (only for 127.0.0.1/localhost)."""
    imap_mailboxes: str = "INBOX"
    """Comma-separated mailboxes the email worker reads."""
    smtp_security: str = "starttls"
    """starttls, tls or none (only for 127.0.0.1/localhost)."""
    email_max_attachment_bytes: int = 10 * 2**20
    telegram_api_base: str = "https://api.telegram.org"

    crm_provider: str = ""
    """Empty (no CRM), bitrix24 or zoho."""
    crm_lookup_timeout_ms: int = 300
    """How long a screen-pop waits for the CRM's customer data before showing without it."""
    crm_cache_seconds: int = 300
    bitrix24_portal: str = ""
    """https://example.bitrix24.ru; the inbound webhook's code is bitrix24_webhook_code (secret)."""
    bitrix24_user_id: int = 1
    """The Bitrix24 user the inbound webhook belongs to; calls nobody else took are his."""
    bitrix24_users: str = ""
    """``login=bitrix_user_id, ...``: the Bitrix24 user of each agent whose login is not the
    email of a Bitrix24 user (those are found by user.get)."""
    zoho_accounts_url: str = "https://accounts.zoho.com"
    zoho_api_url: str = "https://www.zohoapis.com"
    zoho_client_id: str = ""

    ami_password: str = field(default="", repr=False)
    ari_password: str = field(default="", repr=False)
    telegram_token: str = field(default="", repr=False)
    telegram_webhook_secret: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    imap_password: str = field(default="", repr=False)
    session_key: str = field(default="", repr=False)
    metrics_token: str = field(default="", repr=False)
    ami_server_passwords: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(name, password) per ami_servers entry, from ``CALLCENTER_AMI_PASSWORD_<NAME>``."""
    bitrix24_webhook_code: str = field(default="", repr=False)
    zoho_client_secret: str = field(default="", repr=False)
    zoho_refresh_token: str = field(default="", repr=False)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'callcenter.db').resolve()}"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Turn ``[ami] host = ...`` into ``{"ami_host": ...}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Convert a raw value (a string from the environment, or TOML) to the field's type."""
    if target is int or target == "int":
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name!r} must be an integer, got {raw!r}") from None
    if target is Path or target == "Path":
        return Path(str(raw))
    if not isinstance(raw, str):
        raise ConfigError(f"setting {name!r} must be a string, got {raw!r}")
    return raw


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return _flatten(tomllib.load(fh))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Build settings from defaults, the config file, the secrets file and the environment."""
    env = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file or (
        Path(env[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in env else None
    )
    if path is not None:
        from_file = _read_toml(path, "config file")
        leaked = sorted(
            k for k in from_file if k in SECRET_FIELDS or k.startswith(AMI_SERVER_PASSWORD)
        )
        if leaked:
            raise ConfigError(
                f"config file {path} contains secrets ({', '.join(leaked)}); "
                f"put them in the environment or in {ENV_PREFIX}SECRETS_FILE"
            )
        values.update(from_file)

    if f"{ENV_PREFIX}SECRETS_FILE" in env:
        secrets = _read_toml(Path(env[f"{ENV_PREFIX}SECRETS_FILE"]), "secrets file")
        values.update(secrets)

    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key not in (
            f"{ENV_PREFIX}CONFIG",
            f"{ENV_PREFIX}SECRETS_FILE",
        ):
            values[key[len(ENV_PREFIX) :].lower()] = raw

    server_passwords = tuple(
        sorted(
            (key.removeprefix(AMI_SERVER_PASSWORD), _coerce(key, values.pop(key), str))
            for key in [k for k in values if k.startswith(AMI_SERVER_PASSWORD)]
        )
    )
    unknown = sorted(k for k in values if k not in fields or k == "ami_server_passwords")
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    typed = {name: _coerce(name, raw, fields[name].type) for name, raw in values.items()}
    return Settings(**typed, ami_server_passwords=server_passwords)
