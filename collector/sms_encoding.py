"""How a text travels as SMS: GSM-7 or UCS-2, how long it is, and how many parts it costs.

Vonage bills per part and its SMS API needs `type=unicode` for anything outside GSM-7, so the
sender and the template preview both need this answer, and they must agree. Rules: 3GPP TS 23.038
§6.2.1 (default alphabet and its extension table) and TS 23.040 (concatenation header).

- One SMS carries 140 octets: 160 GSM-7 septets or 70 UCS-2 units.
- A concatenated part spends 6 octets on its header: 153 septets or 67 units per part.
- Extension-table characters cost two septets (ESC + char); characters outside the Basic
  Multilingual Plane (most emoji) cost two UCS-2 units (a surrogate pair).
- Splitters never cut an ESC pair or a surrogate pair across parts, so a part may hold 152
  septets or 66 units; the count below packs parts the same way, so it is exact, not an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EncodingName = Literal["GSM-7", "UCS-2"]

# The 128 positions of the default alphabet, minus 0x1B (ESC, the escape to the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table characters every handset renders; each is sent as ESC + char.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_LIMITS: dict[EncodingName, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class Encoding:
    """`characters` counts what the network counts: septets for GSM-7, UTF-16 units for UCS-2."""

    name: EncodingName
    characters: int
    segments: int


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    """True when every character exists in the GSM-7 default alphabet or its extension table."""
    return GSM7_ALL.issuperset(text)


def analyze(text: str, encoding: EncodingName | None = None) -> Encoding:
    """Encoding, length and part count of `text`; an empty text is 0 characters in 0 parts.

    `encoding` forces one: "UCS-2" counts a GSM-compatible text as Vonage bills it when sent with
    `type=unicode`; forcing "GSM-7" on a text it cannot carry raises ValueError.
    """
    gsm = is_gsm7(text)
    name: EncodingName = encoding or ("GSM-7" if gsm else "UCS-2")
    if name == "GSM-7" and not gsm:
        raise ValueError("text has characters outside GSM-7")
    # Counted with str methods, not per character: the scheduler counts every text it sends.
    if name == "GSM-7":
        total = len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION)
    else:
        total = len(text.encode("utf-16-le")) // 2
    single, per_part = _LIMITS[name]
    if total == 0:
        return Encoding(name, 0, 0)
    if total <= single:
        return Encoding(name, total, 1)
    return Encoding(name, total, _pack([_cost(ch, name) for ch in text], per_part))


def _cost(ch: str, name: EncodingName) -> int:
    if name == "GSM-7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _pack(costs: list[int], per_part: int) -> int:
    """Parts needed when no character's units may straddle two parts."""
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts
