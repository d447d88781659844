"""Phone numbers: what we accept as a contact's number, and the forms we store and send.

Contacts are stored in E.164 with the `+`. A number is accepted when phonenumbers finds it valid,
of type MOBILE or FIXED_LINE_OR_MOBILE (North American numbers cannot be told apart), and from a
region in the site's `allowed_countries`; national formats are read with the site's `country`.
Facts checked in ../shared/reference/vonage-and-phonenumbers.md, section 10.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from collector.errors import BadRequest

TEXTABLE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
MAX_INPUT = 40
SEPARATORS = re.compile(r"[\s().\-/]")


class InvalidPhone(BadRequest):
    code = "invalid_phone"


class CountryNotAllowed(BadRequest):
    code = "country_not_allowed"


def parse_phone(
    raw: object, country: str, allowed_countries: Iterable[str], field: str = "phone"
) -> str:
    """The textable E.164 number in `raw`, or `InvalidPhone` / `CountryNotAllowed` naming why."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhone("phone is required, e.g. +14155552671", field=field)
    if len(raw) > MAX_INPUT:
        raise InvalidPhone(f"phone is longer than {MAX_INPUT} characters", field=field)
    try:
        number = phonenumbers.parse(raw, country)
    except NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"phone {raw!r} is not a valid number (read as a {country} number unless it starts "
            "with + and a country code); give it like +14155552671",
            field=field,
        )
    kind = phonenumbers.number_type(number)
    if kind not in TEXTABLE_TYPES:
        raise InvalidPhone(
            f"phone {raw!r} is a {PhoneNumberType.to_string(kind).lower().replace('_', ' ')} "
            "number, which cannot receive texts; give a mobile number",
            field=field,
        )
    region = phonenumbers.region_code_for_number(number)
    allowed = sorted(allowed_countries)
    if region not in allowed:
        raise CountryNotAllowed(
            f"phone {raw!r} is a {region} number; this site accepts numbers from "
            f"{', '.join(allowed)} (the site's allowed_countries)",
            field=field,
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def lookup_form(raw: str, country: str | None = None) -> str | None:
    """A number as typed in a search (`?phone=`, the CLI) in E.164, or None if it is no number.

    `+44 7400 123456`, `447400123456` and `+447400123456` are the same; without a `+` the digits
    are read as international first, then as a national number of `country` when one is given.
    Validity is not required here: an erased or stored number is found as it was stored.
    """
    if not isinstance(raw, str) or len(raw) > MAX_INPUT:
        return None
    compact = SEPARATORS.sub("", raw.strip())
    digits = compact.removeprefix("+")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        return None
    candidate = "+" + digits
    if compact.startswith("+") or country is None or _valid(candidate, None):
        return candidate
    if _valid(digits, country):
        return phonenumbers.format_number(
            phonenumbers.parse(digits, country), PhoneNumberFormat.E164
        )
    return candidate


def _valid(raw: str, region: str | None) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(raw, region)))
    except NumberParseException:
        return False


def from_msisdn(msisdn: str) -> str | None:
    """Vonage's `msisdn` (E.164 digits without `+`) as E.164, or None if it is not digits."""
    digits = msisdn.strip().removeprefix("+")
    if not digits.isdigit() or not 3 <= len(digits) <= 15:
        return None
    return "+" + digits


def same_number(a: str | None, b: str | None) -> bool:
    """Two sender numbers compared as Vonage writes them (no `+`, no spaces); ids as text."""
    if not a or not b:
        return False
    return SEPARATORS.sub("", a).removeprefix("+").lower() == (
        SEPARATORS.sub("", b).removeprefix("+").lower()
    )
