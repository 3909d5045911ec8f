from pathlib import Path

import pytest

from callcenter.config import ConfigError, load_settings


def test_defaults_use_an_embedded_sqlite_file(tmp_path: Path) -> None:
    settings = load_settings({"CALLCENTER_DATA_DIR": str(tmp_path)})
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'callcenter.db'}"
    assert settings.default_region == "RU"
    assert settings.web_host == "127.0.0.1"
    assert settings.ami_host == "127.0.0.1"
    assert settings.session_key == ""


def test_environment_overrides_file_which_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "callcenter.toml"
    config.write_text('[web]\nport = 9000\nhost = "127.0.0.1"\n[ami]\nport = 6000\n')
    settings = load_settings({"CALLCENTER_CONFIG": str(config), "CALLCENTER_AMI_PORT": "7000"})
    assert settings.web_port == 9000
    assert settings.ami_port == 7000
    assert settings.database_url == ""


def test_postgres_url_selects_postgres() -> None:
    url = "postgresql+asyncpg://cc@db/cc"
    assert load_settings({"CALLCENTER_DATABASE_URL": url}).resolved_database_url == url


def test_secrets_in_the_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "callcenter.toml"
    config.write_text('[ami]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match="ami_password"):
        load_settings({"CALLCENTER_CONFIG": str(config)})


def test_secrets_come_from_the_environment_or_a_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[smtp]\npassword = "s3cret"\n')
    settings = load_settings(
        {"CALLCENTER_SECRETS_FILE": str(secrets), "CALLCENTER_AMI_PASSWORD": "amipw"}
    )
    assert settings.smtp_password == "s3cret"
    assert settings.ami_password == "amipw"
    assert "s3cret" not in repr(settings) and "amipw" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CALLCENTER_WEB_PORT": "eighty"}, "web_port.*integer"),
        ({"CALLCENTER_NO_SUCH_THING": "1"}, "unknown setting.*no_such_thing"),
        ({"CALLCENTER_CONFIG": "/nonexistent/cc.toml"}, "does not exist"),
    ],
)
def test_bad_settings_give_a_clear_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[web\nport = ")
    with pytest.raises(ConfigError, match=r"broken\.toml is not valid TOML"):
        load_settings({"CALLCENTER_CONFIG": str(config)})
