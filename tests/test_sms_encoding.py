"""GSM-7 vs UCS-2, characters and parts at every boundary that changes the bill."""

from __future__ import annotations

import pytest

from collector.sms_encoding import GSM7_BASIC, GSM7_EXTENSION, Encoding, analyze, is_gsm7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Encoding("GSM-7", 0, 0)),
        ("a", Encoding("GSM-7", 1, 1)),
        ("a" * 160, Encoding("GSM-7", 160, 1)),
        ("a" * 161, Encoding("GSM-7", 161, 2)),
        ("a" * 306, Encoding("GSM-7", 306, 2)),
        ("a" * 307, Encoding("GSM-7", 307, 3)),
        ("a" * 459, Encoding("GSM-7", 459, 3)),
        ("a" * 460, Encoding("GSM-7", 460, 4)),
        # Extension characters cost two septets each.
        ("€" * 80, Encoding("GSM-7", 160, 1)),
        ("€" * 81, Encoding("GSM-7", 162, 2)),
        ("a" * 159 + "[", Encoding("GSM-7", 161, 2)),
        # An ESC pair never straddles two parts: 152 + (2 + 151) + 1.
        ("a" * 152 + "€" + "a" * 152, Encoding("GSM-7", 306, 3)),
        # UCS-2: 70 per text, 67 per part.
        ("ж" * 70, Encoding("UCS-2", 70, 1)),
        ("ж" * 71, Encoding("UCS-2", 71, 2)),
        ("ж" * 134, Encoding("UCS-2", 134, 2)),
        ("ж" * 135, Encoding("UCS-2", 135, 3)),
        # One non-GSM character turns the whole text into UCS-2.
        ("a" * 69 + "ç", Encoding("UCS-2", 70, 1)),
        ("a" * 70 + "’", Encoding("UCS-2", 71, 2)),
        # Emoji outside the BMP are surrogate pairs: two units, never split across parts.
        ("😀" * 35, Encoding("UCS-2", 70, 1)),
        ("😀" * 36, Encoding("UCS-2", 72, 2)),
        ("a" * 66 + "😀" + "a" * 66, Encoding("UCS-2", 134, 3)),
    ],
)
def test_boundaries(text: str, expected: Encoding) -> None:
    assert analyze(text) == expected


def test_alphabet_tables_have_the_standard_sizes() -> None:
    # 3GPP TS 23.038: 128 basic positions, one of them ESC; 10 common extension characters.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("char", list("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r"))
def test_non_ascii_gsm_characters_stay_gsm(char: str) -> None:
    assert is_gsm7(char)
    assert analyze(char).name == "GSM-7"


@pytest.mark.parametrize(
    "char", ["ç", "’", "“", "`", "\t", "\x1b", "ж", "中", "😀", "ë", "Ä\u0308"]
)
def test_characters_outside_gsm_force_ucs2(char: str) -> None:
    assert not is_gsm7(char)
    assert analyze(char).name == "UCS-2"


def test_forcing_ucs2_counts_as_vonage_bills_unicode() -> None:
    assert analyze("a" * 71, "UCS-2") == Encoding("UCS-2", 71, 2)
    with pytest.raises(ValueError):
        analyze("😀", "GSM-7")
