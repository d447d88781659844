"""All configuration, read once: environment, then `.env` in the working directory, then defaults.

Every setting is a field of the frozen `Settings` dataclass whose metadata names its variable and
says what it does; the README's settings table is checked against `SETTINGS_HELP` by a test.
Defaults work offline: a SQLite file and the console SMS sender.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class Secret(str):
    """A string whose repr never shows its value, so secrets stay out of logs and tracebacks."""

    def __repr__(self) -> str:
        return "Secret('**********')"


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable and the fix."""


def _setting(env: str, default: Any, help: str, default_doc: str | None = None) -> Any:
    if default_doc is None:
        literal = str(default).lower() if isinstance(default, bool) else default
        default_doc = "unset" if default is None else f"`{literal}`"
    return field(default=default, metadata={"env": env, "help": help, "default_doc": default_doc})


SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
SMS_PROVIDERS = ("console", "vonage")


@dataclass(frozen=True)
class Settings:
    db: str = _setting("SMSR_DB", "./smsretarget.db", "SQLite database file")
    public_url: str | None = _setting(
        "SMSR_PUBLIC_URL",
        None,
        "the collector's public base URL, used in the script tag, in links inside texts and in "
        "the receipt callback URL",
        "`http://HOST:PORT` of `serve`",
    )
    secret_key: Secret | None = _setting(
        "SMSR_SECRET_KEY",
        None,
        "signs sessions, CSRF tokens and link tokens",
        "generated at first start and kept in the database",
    )
    admin_token: Secret | None = _setting(
        "SMSR_ADMIN_TOKEN",
        None,
        "bearer token for `/api/v1` (besides per-user API keys)",
        "unset: no token access",
    )
    sms_provider: str | None = _setting(
        "SMSR_SMS_PROVIDER",
        None,
        "`console` or `vonage`",
        "`vonage` when `VONAGE_API_KEY` is set, else `console`",
    )
    vonage_api_key: str | None = _setting("VONAGE_API_KEY", None, "Vonage account API key")
    vonage_api_secret: Secret | None = _setting(
        "VONAGE_API_SECRET", None, "Vonage account API secret"
    )
    vonage_from: str | None = _setting(
        "VONAGE_FROM", None, "sender number or alphanumeric sender id"
    )
    vonage_signature_secret: Secret | None = _setting(
        "VONAGE_SIGNATURE_SECRET",
        None,
        "verifies signed inbound and delivery-receipt webhooks; when set, unsigned or badly "
        "signed webhooks get 401",
    )
    vonage_signature_method: str = _setting(
        "VONAGE_SIGNATURE_METHOD",
        "md5hash",
        "how Vonage signs webhooks: `md5hash`, `md5`, `sha1`, `sha256` or `sha512`",
    )
    vonage_rest_host: str | None = _setting(
        "VONAGE_REST_HOST",
        None,
        "`host[:port]` of Vonage's SMS REST API, always over https (tests trust a throw-away "
        "certificate through `REQUESTS_CA_BUNDLE`)",
        "Vonage's own",
    )
    event_retention_days: int = _setting(
        "SMSR_EVENT_RETENTION_DAYS",
        180,
        "events of visitors never tied to a contact are deleted after this many days",
    )
    optin_expiry_hours: int = _setting(
        "SMSR_OPTIN_EXPIRY_HOURS",
        72,
        "a web opt-in not confirmed with YES within this many hours expires",
    )
    optin_limit_ip: int = _setting(
        "SMSR_OPTIN_LIMIT_IP",
        10,
        "web opt-ins per hour accepted from one IP address (429 above; 0: no limit)",
    )
    optin_limit_site: int = _setting(
        "SMSR_OPTIN_LIMIT_SITE",
        300,
        "web opt-ins per hour accepted for one site (429 above; 0: no limit)",
    )
    confirmations_per_hour: int = _setting(
        "SMSR_CONFIRMATIONS_PER_HOUR",
        100,
        "double opt-in confirmation texts per hour, all sites together; opt-ins above it stay "
        "pending without a text (0: no limit)",
    )
    max_body_bytes: int = _setting(
        "SMSR_MAX_BODY_BYTES", 65536, "largest beacon body `POST /e` accepts (413 above)"
    )
    max_batch_events: int = _setting(
        "SMSR_MAX_BATCH_EVENTS", 50, "most events in one beacon (413 above)"
    )
    rate_limit_ip: int = _setting(
        "SMSR_RATE_LIMIT_IP",
        600,
        "events per minute accepted from one IP address (429 above; bursts up to this many; 0: no limit)",
    )
    rate_limit_site: int = _setting(
        "SMSR_RATE_LIMIT_SITE",
        60000,
        "events per minute accepted for one site (429 above; bursts up to this many; 0: no limit)",
    )
    write_queue_limit: int = _setting(
        "SMSR_WRITE_QUEUE_LIMIT",
        20000,
        "events waiting for the database writer before `POST /e` answers 503",
    )
    trust_proxy: bool = _setting(
        "SMSR_TRUST_PROXY",
        False,
        "take the client IP from `X-Forwarded-For` (only behind a reverse proxy you run)",
    )
    sms_rate: int = _setting(
        "SMSR_SMS_RATE",
        30,
        "texts per second handed to Vonage at most (the account's throughput; Vonage's default is 30)",
    )
    log_level: str = _setting("SMSR_LOG_LEVEL", "info", "`debug`, `info`, `warning` or `error`")

    def __post_init__(self) -> None:
        if self.vonage_signature_method not in SIGNATURE_METHODS:
            raise SettingsError(
                f"VONAGE_SIGNATURE_METHOD={self.vonage_signature_method!r} is not one of "
                f"{', '.join(SIGNATURE_METHODS)}; set it as in the Vonage dashboard"
            )
        if self.sms_provider is not None and self.sms_provider not in SMS_PROVIDERS:
            raise SettingsError(
                f"SMSR_SMS_PROVIDER={self.sms_provider!r} is not `console` or `vonage`"
            )
        if self.provider == "vonage" and not (self.vonage_api_key and self.vonage_api_secret):
            raise SettingsError(
                "SMSR_SMS_PROVIDER=vonage needs VONAGE_API_KEY and VONAGE_API_SECRET"
            )

    @property
    def provider(self) -> str:
        """The SMS sender in force: the explicit choice, else Vonage when a key is configured."""
        if self.sms_provider:
            return self.sms_provider
        return "vonage" if self.vonage_api_key else "console"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | Path | None = ".env",
        **overrides: Any,
    ) -> Settings:
        """Environment first, then the `.env` file, then defaults; `overrides` win over all."""
        environ = os.environ if environ is None else environ
        file_values = read_env_file(Path(env_file)) if env_file else {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = environ.get(name, file_values.get(name))
            if raw is None or raw == "":
                continue
            values[f.name] = _cast(name, raw, f.default)
        values.update(overrides)
        return cls(**values)


def _cast(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")
    if isinstance(default, int):
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number") from None
        if value < 0:
            raise SettingsError(f"{name}={raw!r} must not be negative")
        return value
    if "SECRET" in name or "TOKEN" in name or name == "SMSR_SECRET_KEY":
        return Secret(raw)
    return raw


def read_env_file(path: Path) -> dict[str, str]:
    """Parse `KEY=value` lines; `#` comments and surrounding quotes are allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def settings_help() -> list[tuple[str, str, str]]:
    """(variable, default as documented, help) for every setting, in declaration order."""
    return [
        (f.metadata["env"], f.metadata["default_doc"], f.metadata["help"]) for f in fields(Settings)
    ]
