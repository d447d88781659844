"""Phone numbers: E.164 out, clear refusals naming the number and the fix."""

from __future__ import annotations

import pytest

from collector.phones import (
    CountryNotAllowed,
    InvalidPhone,
    from_msisdn,
    lookup_form,
    parse_phone,
    same_number,
)


@pytest.mark.parametrize(
    ("raw", "country", "allowed", "expected"),
    [
        ("07400 123456", "GB", ["GB"], "+447400123456"),
        ("+44 7400 123456", "US", ["GB"], "+447400123456"),
        ("(415) 555-2671", "US", ["US"], "+14155552671"),  # FIXED_LINE_OR_MOBILE is accepted
        ("+1 415-555-2671", "GB", ["US", "GB"], "+14155552671"),
        ("tel:+33-6-12-34-56-78", "US", ["FR"], "+33612345678"),
    ],
)
def test_textable_numbers_come_out_in_e164(raw, country, allowed, expected) -> None:
    assert parse_phone(raw, country, allowed) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "phone is required"),
        (None, "phone is required"),
        (12, "phone is required"),
        ("hello", "is not a valid number"),
        ("12", "is not a valid number"),
        ("07700 900123", "is not a valid number"),  # Ofcom drama range: not valid
        ("020 7946 0018", "fixed line number, which cannot receive texts"),
        ("+1 800 275 2273", "toll free number"),
        ("1" * 41, "longer than 40"),
    ],
)
def test_bad_numbers_are_refused_with_the_reason(raw, message) -> None:
    with pytest.raises(InvalidPhone, match=message) as info:
        parse_phone(raw, "GB", ["GB", "US"], field="e[0].p.phone")
    assert info.value.status == 400
    assert info.value.field == "e[0].p.phone"


def test_numbers_outside_the_allowed_countries_are_refused() -> None:
    with pytest.raises(CountryNotAllowed, match=r"a FR number; this site accepts numbers from US"):
        parse_phone("+33 6 12 34 56 78", "US", ["US"])


@pytest.mark.parametrize(
    "raw", ["+14155552671", "14155552671", "+1 415 555 2671", " 1 (415) 555-2671 "]
)
def test_lookup_accepts_numbers_with_or_without_plus_and_spaces(raw) -> None:
    assert lookup_form(raw) == "+14155552671"


def test_lookup_reads_national_numbers_with_the_sites_country() -> None:
    assert lookup_form("07400 123456", "GB") == "+447400123456"
    assert lookup_form("447400123456", "GB") == "+447400123456"
    assert lookup_form("not a number") is None
    assert lookup_form("123") is None


def test_vonage_forms() -> None:
    assert from_msisdn("447400123456") == "+447400123456"
    assert from_msisdn("abc") is None
    assert same_number("+44 7400 123456", "447400123456")
    assert same_number("AcmeInc", "acmeinc")
    assert not same_number(None, "447400123456")
