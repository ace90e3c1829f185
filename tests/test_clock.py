"""current_time(): OCPP's RFC 3339 form, formatted at most once a second."""

from __future__ import annotations

import calendar
import re
import time

import pytest

from csms_kit import clock, current_time


def test_format_is_rfc3339_utc_to_the_second() -> None:
    before = int(time.time())
    text = current_time()
    after = int(time.time())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    parsed = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    assert before <= parsed <= after


def test_formatted_once_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_790_000_000.2]
    formatted: list[int] = []
    real_gmtime = time.gmtime

    def gmtime(seconds: float) -> time.struct_time:
        formatted.append(int(seconds))
        return real_gmtime(seconds)

    monkeypatch.setattr(clock.time, "time", lambda: now[0])
    monkeypatch.setattr(clock.time, "gmtime", gmtime)
    first = current_time()
    now[0] = 1_790_000_000.9
    assert current_time() == first == "2026-09-21T14:13:20Z"
    now[0] = 1_790_000_001.0
    assert current_time() == "2026-09-21T14:13:21Z"
    assert formatted == [1_790_000_000, 1_790_000_001]
