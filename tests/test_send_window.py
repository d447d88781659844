"""Sending windows in the recipient's local time, with several candidate zones."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.send_window import candidate_zones, is_inside, next_send_time


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_zone_from_the_number_or_the_site() -> None:
    assert [z.key for z in candidate_zones("+33612345678", "America/New_York")] == ["Europe/Paris"]
    # UK mobiles list Guernsey, Isle of Man, Jersey and London: the site's zone is one of them.
    assert [z.key for z in candidate_zones("+447400123456", "Europe/London")] == ["Europe/London"]
    assert len(candidate_zones("+447400123456", "America/New_York")) == 4
    assert [z.key for z in candidate_zones("+999", "Europe/Berlin")] == ["Europe/Berlin"]


def test_inside_the_window_sends_now() -> None:
    zones = candidate_zones("+33612345678", "Europe/Paris")
    now = utc(2026, 6, 10, 12, 0)  # 14:00 in Paris
    assert next_send_time(now, zones, "09:00", "20:00") == now


def test_at_night_waits_for_the_morning_in_local_time() -> None:
    zones = candidate_zones("+33612345678", "Europe/Paris")
    now = utc(2026, 6, 10, 19, 30)  # 21:30 in Paris (CEST, UTC+2)
    assert next_send_time(now, zones, "09:00", "20:00") == utc(2026, 6, 11, 7, 0)
    winter = utc(2026, 1, 10, 5, 0)  # 06:00 in Paris (CET, UTC+1)
    assert next_send_time(winter, zones, "09:00", "20:00") == utc(2026, 1, 10, 8, 0)


def test_several_zones_keep_to_hours_inside_the_window_everywhere() -> None:
    zones = candidate_zones("+61412345678", "Europe/London")  # Australia: Perth to Sydney and more
    assert len(zones) > 1
    now = utc(2026, 6, 10, 0, 0)  # 10:00 Sydney, 08:00 Perth
    due = next_send_time(now, zones, "09:00", "20:00")
    assert due is not None and due > now
    for zone in zones:
        local = due.astimezone(zone).time()
        assert local.hour >= 9 and (local.hour, local.minute) <= (20, 0), zone.key


def test_always_and_no_common_hours() -> None:
    zones = candidate_zones("+33612345678", "Europe/Paris")
    now = utc(2026, 6, 10, 1, 0)
    assert next_send_time(now, zones, "00:00", "24:00") == now
    assert is_inside(utc(2026, 6, 10, 12, 0), zones, "09:00", "20:00")
    from zoneinfo import ZoneInfo

    far_apart = [ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")]  # 25 h apart
    assert next_send_time(now, far_apart, "09:00", "10:00") is None


def test_window_across_midnight_and_dst_change() -> None:
    zones = candidate_zones("+33612345678", "Europe/Paris")
    late = utc(2026, 6, 10, 21, 30)  # 23:30 Paris
    assert next_send_time(late, zones, "20:00", "02:00") == late
    # 2026-03-29 02:00 does not exist in Paris: a window opening at 02:30 opens an hour later, 03:30 CEST.
    before = utc(2026, 3, 29, 0, 0)
    assert next_send_time(before, zones, "02:30", "12:00") == utc(2026, 3, 29, 1, 30)
