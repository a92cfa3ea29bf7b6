"""Dates as contractors and members read them: "2 Mar 2025", not 2025-03-02."""

from __future__ import annotations

from datetime import date, datetime

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day(d: date | str | None, today: date | None = None) -> str:
    """ "2 Mar 2025"; "2 Mar" when `today` is in the same year; "" for no date. An ISO string is
    read first (what JSON views hold); text that is no date is returned as it is."""
    if d is None or d == "":
        return ""
    if isinstance(d, str):
        try:
            when = datetime.fromisoformat(d).date() if "T" in d or " " in d else date.fromisoformat(d)
        except ValueError:
            return d
    else:
        when = d.date() if isinstance(d, datetime) else d
    text = f"{when.day} {_MONTHS[when.month - 1]}"
    return text if today is not None and today.year == when.year else f"{text} {when.year}"


def since(d: date | str | None) -> str:
    """When a version is in force from: its day, or "from the start" for the earliest dates
    (the demo and packs installed "from always" use 1970-01-01)."""
    text = d.isoformat() if isinstance(d, date) else (d or "")
    return "from the start" if text[:4] <= "1970" and text else day(d)


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def day_and_time(d: datetime | str | None) -> str:
    """ "Tue 3 Mar 2026, 09:30", in the time zone the moment carries (views give local times);
    "" for none; text that is no moment is returned as it is."""
    if d is None or d == "":
        return ""
    try:
        when = datetime.fromisoformat(d) if isinstance(d, str) else d
    except ValueError:
        return str(d)
    return f"{_WEEKDAYS[when.weekday()]} {day(when)}, {when:%H:%M}"
