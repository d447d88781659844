"""Validation of a site's fields, shared by the CLI and the admin API.

Each check raises `BadRequest` naming the field, the value and what would be accepted. Defaults
follow the contract: country `US`, time zone = the country's first zone in phonenumbers' data,
allowed countries = `[country]`, sending window 09:00-20:00, one automated text per day.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as pn_timezone

from collector.errors import BadRequest

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z]")


def normalize_origin(url: str, field: str = "origins") -> str:
    """`https://Shop.example.com/` → `https://shop.example.com`; anything else is refused."""
    if not isinstance(url, str):
        raise BadRequest(f"origin {url!r} must be a string", field=field)
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(
            f"origin {url!r} is not an http(s) URL; give one like https://shop.example.com",
            field=field,
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise BadRequest(
            f"origin {url!r} must be scheme://host[:port] only, without a path or query",
            field=field,
        )
    try:
        port = parts.port
    except ValueError:
        raise BadRequest(f"origin {url!r} has a bad port", field=field) from None
    default_port = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port and port != default_port else ""
    return f"{parts.scheme}://{host}{suffix}"


def check_country(value: Any, field: str = "country") -> str:
    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise BadRequest(
            f"{field} {value!r} is not an ISO 3166 alpha-2 country code phonenumbers knows "
            "(e.g. US, GB, DE)",
            field=field,
        )
    return value.upper()


def default_timezone(country: str) -> str:
    """The country's first zone in phonenumbers' data, as the contract fixes."""
    for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(country, kind)
        if example is not None:
            zones = [
                z
                for z in pn_timezone.time_zones_for_number(example)
                if z != pn_timezone.UNKNOWN_TIMEZONE
            ]
            if zones:
                return zones[0]
    return "UTC"


def check_timezone(value: Any) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadRequest(
            f"timezone {value!r} is not an IANA time zone (e.g. Europe/London)", field="timezone"
        ) from None
    return str(value)


def check_send_window(value: Any) -> tuple[str, str]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("start"), str)
        or not isinstance(value.get("end"), str)
        or not HHMM.match(value["start"])
        or not HHMM.match(value["end"])
        or value["start"] == "24:00"
        or value["start"] == value["end"]
    ):
        raise BadRequest(
            f'send_window {value!r} must be {{"start": "HH:MM", "end": "HH:MM"}} '
            'with start != end (end may be "24:00"; "00:00"-"24:00" means always)',
            field="send_window",
        )
    return value["start"], value["end"]


def check_string(value: Any, field: str, *, max_len: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise BadRequest(f"{field} must be a non-empty string", field=field)
    if len(value) > max_len:
        raise BadRequest(f"{field} is longer than {max_len} characters", field=field)
    return value.strip()


def check_int(value: Any, field: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise BadRequest(
            f"{field} must be a whole number from {minimum} to {maximum}, not {value!r}",
            field=field,
        )
    return value


def check_list(value: Any, field: str, *, min_len: int = 0, max_len: int = 100) -> list[Any]:
    if not isinstance(value, list) or not min_len <= len(value) <= max_len:
        raise BadRequest(f"{field} must be a list of {min_len} to {max_len} items", field=field)
    return value


def check_pricing_paths(value: Any) -> list[str]:
    paths = check_list(value, "pricing_paths", max_len=50)
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 200:
            raise BadRequest(
                f"pricing_paths entry {path!r} must be a path pattern starting with / "
                "(shell-style glob, e.g. /pricing*)",
                field="pricing_paths",
            )
    return paths


def path_matches(path: str, patterns: list[str]) -> bool:
    """Shell-style globs on the URL path, case-sensitive (`/pricing*`)."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def is_alphanumeric_sender(sender: str | None) -> bool:
    """Vonage senders with letters cannot receive replies (no YES, no STOP by text)."""
    return bool(sender) and bool(ALPHANUMERIC_SENDER.search(sender or ""))


def check_field_names(
    data: dict[str, Any],
    *,
    editable: tuple[str, ...],
    read_only: tuple[str, ...],
    required: tuple[str, ...],
    creating: bool,
    what: str,
) -> None:
    """A resource's body names only fields it may set, and all required ones on create."""
    given = sorted(set(data) & set(read_only))
    if given:
        raise BadRequest(f"{given[0]} is read-only", field=given[0])
    unknown = sorted(set(data) - set(editable))
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r}; {what} have {', '.join(editable)}", field=unknown[0]
        )
    if creating:
        for name in required:
            if name not in data:
                raise BadRequest(f"{name} is required", field=name)
