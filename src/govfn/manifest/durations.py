"""The two duration parsers Knative's webhooks use, ported so that govfn refuses what they do.

- `go_duration`: Go's `time.ParseDuration` (`1h30m`, `90s`, `1.5s`, `0`), which Serving uses
  for the `serving.knative.dev/rollout-duration` and `progress-deadline` annotations and the
  autoscaling windows; the result is in nanoseconds.
- `knative_period`: `period.Parse` of github.com/rickb777/date v1.13.0 (what Eventing 1.22
  vendors), which Eventing uses for a delivery's `timeout` and `backoffDelay` (ISO-8601,
  `PT0.5S`). It keeps one decimal place per field, dropping the rest (`PT0.05S` is zero),
  normalises the fields and stores each in an int16 of tenths, so that `IsZero` in the
  webhook is `all(field == 0 for field in knative_period(text))`.

Both raise ValueError with the parser's reason.
"""

from __future__ import annotations

__all__ = ["SECOND", "go_duration", "knative_period"]

SECOND = 1_000_000_000  # nanoseconds
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": SECOND,
    "m": 60 * SECOND,
    "h": 3600 * SECOND,
}
_INT64_MAX = (1 << 63) - 1
_DIGITS = "0123456789"


def go_duration(text: str) -> int:
    """Nanoseconds, as Go's `time.ParseDuration(text)` gives them."""
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    while rest:
        if rest[0] != "." and rest[0] not in _DIGITS:
            raise ValueError(f"invalid duration {text!r}")
        whole = _leading(rest, _DIGITS)
        rest, value = rest[len(whole) :], int(whole or "0")
        fraction = ""
        if rest[:1] == ".":
            fraction = _leading(rest[1:], _DIGITS)
            rest = rest[1 + len(fraction) :]
        if not whole and not fraction:
            raise ValueError(f"invalid duration {text!r}")
        unit = _leading(rest, None)
        if not unit:
            raise ValueError(f"missing unit in duration {text!r}")
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        rest, scale = rest[len(unit) :], _UNITS[unit]
        if value > (1 << 63) // scale:
            raise ValueError(f"invalid duration {text!r} (overflow)")
        value *= scale
        if fraction.strip("0"):
            digits = fraction[:18]  # Go stops accumulating before uint64 overflows
            value += int(int(digits) * (scale / 10 ** len(digits)))
        total += value
        if total > 1 << 63:
            raise ValueError(f"invalid duration {text!r} (overflow)")
    if not negative and total > _INT64_MAX:
        raise ValueError(f"invalid duration {text!r} (overflow)")
    return -total if negative else total


def _leading(text: str, allowed: str | None) -> str:
    """The longest prefix of characters in `allowed` (None: of characters not digits or '.')."""
    end = 0
    while end < len(text) and (
        text[end] in allowed if allowed is not None else text[end] not in _DIGITS + "."
    ):
        end += 1
    return text[:end]


_ONE_E6, _DAYS_PER_MONTH_E6 = 1_000_000, 30_436_875


def knative_period(text: str) -> tuple[int, int, int, int, int, int]:
    """(years, months, days, hours, minutes, seconds) in tenths, as rickb777/date's
    `period.Parse` leaves them."""
    if not text:
        raise ValueError("cannot parse a blank string as a period")
    if text == "P0":
        return (0, 0, 0, 0, 0, 0)
    rest, negative = text, False
    if rest[0] in "-+":
        negative, rest = rest[0] == "-", rest[1:]
    if not rest.startswith("P"):
        raise ValueError(f"expected 'P' period mark at the start: {text}")
    rest = rest[1:]
    found: dict[str, int] = {}
    date_part = rest
    if "T" in rest:
        at = rest.index("T")
        time_part = rest[at + 1 :]
        for mark in "HMS":
            time_part = _field(time_part, mark, "t" + mark, found, text)
        if time_part:
            raise ValueError(f"unexpected remaining components {time_part}: {text}")
        date_part = rest[:at]
    for mark in "YMWD":
        date_part = _field(date_part, mark, mark, found, text)
    if date_part:
        raise ValueError(f"unexpected remaining components {date_part}: {text}")
    if not found:
        raise ValueError(f"expected 'Y', 'M', 'W', 'D', 'H', 'M', or 'S' marker: {text}")
    fields = [found.get(key, 0) for key in ("Y", "M", "W", "D", "tH", "tM", "tS")]
    years, months, weeks, days, hours, minutes, seconds = fields
    return _normalised([years, months, weeks * 7 + days, hours, minutes, seconds], negative)


def _field(rest: str, mark: str, key: str, found: dict[str, int], text: str) -> str:
    at = rest.find(mark)
    if at <= 0:
        return rest
    number = rest[:at]
    point = number.find(".")
    if point < 0:
        point = number.find(",")
    if point < 0:
        number += "0"
    elif len(number) - point > 1:
        number = number[:point] + number[point + 1 : point + 2]
    else:
        number = number[:point] + "0"
    body = number[1:] if number[:1] in "+-" else number
    if not body or any(char not in _DIGITS for char in body) or abs(int(number)) > _INT64_MAX:
        raise ValueError(f"expected a number before the {mark!r} marker: {text}")
    found[key] = int(number)
    return rest[at + 1 :]


def _quot(a: int, b: int) -> int:
    """Go's integer division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _rem(a: int, b: int) -> int:
    return a - b * _quot(a, b)


def _normalised(p: list[int], negative: bool) -> tuple[int, int, int, int, int, int]:
    """period64.normalise64(true).toPeriod(): abs, rippleUp, moveFractionToRight, int16."""
    if not negative and any(value < 0 for value in p):
        p, negative = [abs(value) for value in p], True
    years, months, days, hours, minutes, seconds = p
    minutes, seconds = minutes + _quot(seconds, 600) * 10, _rem(seconds, 600)
    hours, minutes = hours + _quot(minutes, 600) * 10, _rem(minutes, 600)
    if hours > 32204:
        days, hours = days + _quot(hours, 240) * 10, _rem(hours, 240)
    if days > 32760:
        scaled = days * _ONE_E6
        months += _quot(scaled, _DAYS_PER_MONTH_E6)
        days = _quot(_rem(scaled, _DAYS_PER_MONTH_E6), _ONE_E6)
    years, months = years + _quot(months, 120) * 10, _rem(months, 120)
    if _rem(years, 10) and (months or days or hours or minutes or seconds):
        months, years = months + _rem(years, 10) * 12, _quot(years, 10) * 10
    if _rem(months, 10) and (days or hours or minutes or seconds):
        days += _quot(_rem(months, 10) * _DAYS_PER_MONTH_E6, _ONE_E6)
        months = _quot(months, 10) * 10
    if _rem(days, 10) and (hours or minutes or seconds):
        hours, days = hours + _rem(days, 10) * 24, _quot(days, 10) * 10
    if _rem(hours, 10) and (minutes or seconds):
        minutes, hours = minutes + _rem(hours, 10) * 60, _quot(hours, 10) * 10
    if _rem(minutes, 10) and seconds:
        seconds, minutes = seconds + _rem(minutes, 10) * 60, _quot(minutes, 10) * 10
    sign = -1 if negative else 1
    values = [sign * v for v in (years, months, days, hours, minutes, seconds)]
    y, mo, d, h, mi, s = (((v + 0x8000) & 0xFFFF) - 0x8000 for v in values)  # int16(...)
    return (y, mo, d, h, mi, s)
