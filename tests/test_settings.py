"""Settings: read once from the environment, then `.env`, then defaults; documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.settings import Secret, Settings, SettingsError, settings_help

README = Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| (.+) \| (.+) \|$")


def readme_settings() -> dict[str, tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    documented = readme_settings()
    in_code = {name: (help, default) for name, default, help in settings_help()}
    assert set(documented) == set(in_code)
    for name, (help, default) in in_code.items():
        assert documented[name] == (help, default), name


def test_contract_settings_exist_with_contract_defaults() -> None:
    defaults = {name: default for name, default, _ in settings_help()}
    assert defaults["SMSR_DB"] == "`./smsretarget.db`"
    assert defaults["SMSR_EVENT_RETENTION_DAYS"] == "`180`"
    assert defaults["VONAGE_SIGNATURE_METHOD"] == "`md5hash`"
    for name in (
        "SMSR_PUBLIC_URL",
        "SMSR_SECRET_KEY",
        "SMSR_ADMIN_TOKEN",
        "SMSR_SMS_PROVIDER",
        "VONAGE_API_KEY",
        "VONAGE_API_SECRET",
        "VONAGE_FROM",
        "VONAGE_SIGNATURE_SECRET",
        "VONAGE_REST_HOST",
    ):
        assert name in defaults


def test_defaults_work_offline() -> None:
    settings = Settings.from_env({}, env_file=None)
    assert settings.db == "./smsretarget.db"
    assert settings.provider == "console"
    assert settings.admin_token is None


def test_environment_beats_env_file_which_beats_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nSMSR_DB=from-file.db\nexport SMSR_EVENT_RETENTION_DAYS='30'\n"
        'SMSR_ADMIN_TOKEN="file-token"\n'
    )
    settings = Settings.from_env({"SMSR_DB": "from-env.db"}, env_file=env_file)
    assert settings.db == "from-env.db"
    assert settings.event_retention_days == 30
    assert settings.admin_token == "file-token"


def test_secrets_never_show_in_repr() -> None:
    settings = Settings.from_env(
        {"SMSR_ADMIN_TOKEN": "hunter2", "VONAGE_API_KEY": "k", "VONAGE_API_SECRET": "s3cr3t"},
        env_file=None,
    )
    assert isinstance(settings.admin_token, Secret)
    assert "hunter2" not in repr(settings)
    assert "s3cr3t" not in repr(settings)
    assert settings.provider == "vonage"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"SMSR_EVENT_RETENTION_DAYS": "soon"},
            "SMSR_EVENT_RETENTION_DAYS='soon' is not a whole number",
        ),
        ({"SMSR_EVENT_RETENTION_DAYS": "-1"}, "must not be negative"),
        ({"SMSR_TRUST_PROXY": "maybe"}, "not a boolean"),
        ({"VONAGE_SIGNATURE_METHOD": "crc32"}, "VONAGE_SIGNATURE_METHOD='crc32' is not one of"),
        ({"SMSR_SMS_PROVIDER": "twilio"}, "is not `console` or `vonage`"),
        ({"SMSR_SMS_PROVIDER": "vonage"}, "needs VONAGE_API_KEY and VONAGE_API_SECRET"),
    ],
)
def test_bad_values_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(environ, env_file=None)
