"""Values by the XML Schema lexical rules of their type, never by a cast that can throw.

The schema accepts more spellings than a plain cast reads: whitespace around a value (the
built-in types collapse it), a sign on an integer, a zone on a date or a time, fractional
seconds, and ``24:00:00`` for the end of a day. Each is a valid way for a unit to write the
value it means, so each is read into that value here. RULES.md, Times: a time without a zone is
Norwegian local time; a time with a zone is kept as the instant it names and stored as Norwegian
local time. A date with a zone keeps its calendar date (a zone does not move a day).

Our schemas bound years to four digits and integers to 32 bits (facets in NPR.xsd), so every
schema-valid value converts; anything else raises :class:`LexicalError`, a ``ValueError`` the
reader turns into a reason for the unit instead of a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
INT32_MAX = 2**31 - 1
MONEY_SCALE, MONEY_DIGITS = 2, 18  # kroner with øre, as Arrow decimal128(18, 2)

_WS = re.compile(r"[ \t\r\n]+")
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_ZONE = r"(?P<zone>Z|[+-](?:\d{2}):(?:\d{2}))?"
_DATE = re.compile(r"(?P<y>-?\d{4,})-(?P<m>\d{2})-(?P<d>\d{2})" + _ZONE, re.ASCII)
_DATETIME = re.compile(
    r"(?P<y>-?\d{4,})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"T(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})(?:\.(?P<frac>\d+))?" + _ZONE,
    re.ASCII,  # the XSD lexical spaces are ASCII digits; \d alone would read any script's
)


class LexicalError(ValueError):
    """A value that does not name a value we can store (the schema should have refused it)."""


def collapse(value: str) -> str:
    """XSD ``whiteSpace="collapse"``: trim, and runs of XML whitespace become one space."""
    return _WS.sub(" ", value).strip(" ")


def xs_integer(value: str, maximum: int = INT32_MAX) -> int:
    """An xs:integer (and its derived types) within ``[-maximum - 1, maximum]``."""
    text = collapse(value)
    if not _INTEGER.fullmatch(text):
        raise LexicalError(f"{value!r} is not an integer")
    number = int(text)
    if not -maximum - 1 <= number <= maximum:
        raise LexicalError(f"{value!r} is out of range (at most {maximum:,})")
    return number


def xs_decimal(value: str, scale: int = MONEY_SCALE, digits: int = MONEY_DIGITS) -> Decimal:
    """An xs:decimal as an exact ``Decimal`` with ``scale`` fraction digits.

    Money is never rounded in silence: ``1.240`` is 1.24, but ``1.245`` would need rounding and
    is refused, as is a value of more than ``digits`` digits (our schemas bound both).
    """
    text = collapse(value)
    if not _DECIMAL.fullmatch(text):
        raise LexicalError(f"{value!r} is not a decimal number")
    number = Decimal(text)
    try:
        exact = number.quantize(Decimal(1).scaleb(-scale))
    except InvalidOperation:
        raise LexicalError(f"{value!r} is out of range") from None
    if exact != number:
        raise LexicalError(f"{value!r} has more than {scale} decimals")
    if len(exact.as_tuple().digits) > digits:
        raise LexicalError(f"{value!r} has more than {digits} digits")
    return exact


def xs_date(value: str) -> date:
    """An xs:date as its calendar date; a zone, if any, does not change the day."""
    found = _DATE.fullmatch(collapse(value))
    if not found:
        raise LexicalError(f"{value!r} is not a date")
    return _calendar_date(value, found)


def xs_date_attr(attrs: Mapping[str, str], name: str) -> date | None:
    """The date attribute ``name`` of ``attrs`` by its XSD lexical rules (``" 2026-04-30 "`` is
    30 April), None if absent or no date (``2026-02-29``: a rejected file is still recorded)."""
    try:
        return xs_date(attrs[name])
    except (KeyError, LexicalError):
        return None


def xs_datetime(value: str) -> datetime:
    """An xs:dateTime as naive Norwegian local time, to the second (fractions truncated).

    ``24:00:00`` is the first instant of the next day; a zoned time is converted to Oslo time.
    """
    found = _DATETIME.fullmatch(collapse(value))
    if not found:
        raise LexicalError(f"{value!r} is not a date and time")
    day = _calendar_date(value, found)
    hour, minute, second = int(found["H"]), int(found["M"]), int(found["S"])
    if hour == 24 and (minute, second, int(found["frac"] or 0)) == (0, 0, 0):
        hour, day = 0, _next_day(value, day)
    try:
        moment = datetime(day.year, day.month, day.day, hour, minute, second)
    except ValueError as exc:
        raise LexicalError(f"{value!r}: {exc}") from None
    zone = found["zone"]
    if zone is None:
        return moment
    return _to_oslo(value, moment, zone)


def _calendar_date(value: str, found: re.Match[str]) -> date:
    try:
        return date(int(found["y"]), int(found["m"]), int(found["d"]))
    except ValueError as exc:
        raise LexicalError(f"{value!r}: {exc}") from None


def _next_day(value: str, day: date) -> date:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        raise LexicalError(f"{value!r} is out of range") from None


def _to_oslo(value: str, moment: datetime, zone: str) -> datetime:
    if zone == "Z":
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59 or (hours == 14 and minutes):
            raise LexicalError(f"{value!r} has an invalid zone")
        offset = sign * timedelta(hours=hours, minutes=minutes)
    try:
        instant = (moment - offset).replace(tzinfo=UTC)
        return instant.astimezone(OSLO).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise LexicalError(f"{value!r} is out of range") from None
