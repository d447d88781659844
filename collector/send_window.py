"""The recipient's sending window, in their local time, and the next moment a text may go.

The time zone comes from the number (phonenumbers' prefix data). Where it gives several zones,
the site's zone is used if it is one of them; otherwise a text goes only when the local time is
inside the window in every candidate zone (the most restrictive reading, so nobody is texted at
night). A text due outside the window waits for the next window; it is never dropped for that.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

ALWAYS = ("00:00", "24:00")
SEARCH_DAYS = 8

Interval = tuple[datetime, datetime]


def candidate_zones(e164: str, site_timezone: str) -> list[ZoneInfo]:
    """The zones the recipient may be in; the site's zone when the number allows it or says nothing."""
    try:
        number = phonenumbers.parse(e164)
        names = [
            z
            for z in pn_timezone.time_zones_for_number(number)
            if z != pn_timezone.UNKNOWN_TIMEZONE
        ]
    except phonenumbers.NumberParseException:
        names = []
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            continue
    if not zones or site_timezone in names:
        return [ZoneInfo(site_timezone)]
    return zones


def _clock(value: str) -> timedelta:
    hours, minutes = value.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes))


def _local(day: date, offset: timedelta, zone: ZoneInfo) -> datetime:
    """Local wall time `day + offset` in `zone`, as UTC; a time skipped by DST moves forward."""
    naive = datetime.combine(day, time()) + offset
    aware = naive.replace(tzinfo=zone)
    round_trip = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if round_trip != naive:  # inside a spring-forward gap: the hour that does not exist
        aware = (naive + timedelta(hours=1)).replace(tzinfo=zone)
    return aware.astimezone(UTC)


def _windows(zone: ZoneInfo, start: str, end: str, around: datetime) -> list[Interval]:
    first = around.astimezone(zone).date() - timedelta(days=1)
    windows = []
    for n in range(SEARCH_DAYS + 2):
        day = first + timedelta(days=n)
        opens, closes = _local(day, _clock(start), zone), _local(day, _clock(end), zone)
        if closes <= opens:  # a window across midnight, e.g. 20:00-02:00
            closes = _local(day + timedelta(days=1), _clock(end), zone)
        windows.append((opens, closes))
    return windows


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    both = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                both.append((start, end))
    return sorted(both)


def next_send_time(now: datetime, zones: list[ZoneInfo], start: str, end: str) -> datetime | None:
    """`now` if it is inside the window in every zone, else when that next holds; None if never."""
    if (start, end) == ALWAYS or start == end:
        return now
    allowed: list[Interval] | None = None
    for zone in zones:
        windows = _windows(zone, start, end, now)
        allowed = windows if allowed is None else _intersect(allowed, windows)
    for opens, closes in allowed or []:
        if closes > now:
            return max(opens, now)
    return None


def is_inside(now: datetime, zones: list[ZoneInfo], start: str, end: str) -> bool:
    return next_send_time(now, zones, start, end) == now
