"""Config: defaults, the shipped file, environment overrides, and errors that name
the file, the key and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import Config, ConfigValueError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_file_equals_the_defaults() -> None:
    shipped = load_config(ROOT / "config" / "idagent.toml", env={})
    defaults = Config.defaults()
    for section in ("agent", "readers", "card", "trust", "qr", "bhyt", "intake", "outbox", "api"):
        assert getattr(shipped, section) == getattr(defaults, section), section


def test_shipped_file_has_no_secret() -> None:
    shipped = load_config(ROOT / "config" / "idagent.toml", env={})
    assert shipped.bhyt.password == "" and shipped.bhyt.officer_id == ""


def test_environment_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[api]\nport = 9000\n[readers]\nbackends = ["pcsc"]\n', encoding="utf-8")
    config = load_config(f, env={"IDAGENT_API__PORT": "9100", "IDAGENT_READERS__BACKENDS": "pcsc, nfc",
                                 "IDAGENT_BHYT__ENABLED": "yes"})
    assert config.api.port == 9100
    assert config.readers.backends == ["pcsc", "nfc"]
    assert config.bhyt.enabled is True


def test_config_path_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[api]\nport = 9001\n", encoding="utf-8")
    assert load_config(env={"IDAGENT_CONFIG": str(f)}).api.port == 9001


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[api]\nport = 70000\n", r"c\.toml: \[api\] port: expected a TCP port"),
        ("[api]\nport = \"80\"\n", r"\[api\] port: expected an integer, got '80'"),
        ("[api]\nprot = 80\n", r"\[api\] has no key 'prot'; known keys: .*port"),
        ("[apii]\n", r"unknown section \[apii\]"),
        ("[agent]\nlog_format = \"xml\"\n", r"\[agent\] log_format: expected one of 'plain', 'json'"),
        ("[readers]\nbackends = [\"usb\"]\n", r"\[readers\] backends: expected a list of \"pcsc\""),
        ("[readers]\nbackends = \"pcsc\"\n", r"backends: expected a list of a string"),
        ("[card]\nskip_files = [3, 40]\n", r"skip_files: expected data group numbers"),
        ("[api\n", r"invalid TOML"),
        ("api = 3\n", r"api must be a \[section\]"),
    ],
)
def test_bad_values_name_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigValueError, match=message):
        load_config(f, env={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigValueError, match=r"environment IDAGENT_API__PORT: expected an integer"):
        load_config(env={"IDAGENT_API__PORT": "eighty"})
    with pytest.raises(ConfigValueError, match=r"IDAGENT_BHYT__ENABLED: expected true or false"):
        load_config(env={"IDAGENT_BHYT__ENABLED": "maybe"})


def test_missing_file() -> None:
    with pytest.raises(ConfigValueError, match="does not exist"):
        load_config("/nonexistent/idagent.toml", env={})


def test_replace_validates() -> None:
    config = Config.defaults().replace("api", port=9002)
    assert config.api.port == 9002 and config.api.host == "127.0.0.1"
    with pytest.raises(ConfigValueError):
        Config.defaults().replace("api", port=0)


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    secret.chmod(0o644)
    config = Config.defaults().replace("bhyt", password_file=str(secret))
    with pytest.raises(ConfigValueError, match="mode 0644"):
        config.bhyt_password()
    secret.chmod(0o600)
    assert config.bhyt_password() == "s3cret"
    assert "s3cret" not in repr(config)
    with pytest.raises(ConfigValueError, match="cannot read"):
        Config.defaults().replace("bhyt", password_file=str(tmp_path / "missing")).bhyt_password()
