"""EventBridge schedule expressions (`rate(...)`, `cron(...)`, Chalice's Rate and Cron objects),
read well enough to fire scheduled functions locally on their real period.

Cron follows EventBridge's six-field dialect (minutes hours day-of-month month day-of-week year,
days of the week 1-7 = SUN-SAT, `?` for "any") in UTC. The rarely used `L`, `W` and `#` forms are
refused with UnsupportedSchedule rather than guessed: the driver then says it cannot run that
function instead of running it at the wrong time.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass
from typing import Any, Protocol

_UTC = datetime.UTC
_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+(minutes?|hours?|days?)\s*\)$", re.IGNORECASE)
_CRON_RE = re.compile(r"^cron\((.*)\)$", re.IGNORECASE)
# Last day (L, 5L), nearest weekday (15W, LW) and nth weekday (2#1); not names like JUL or WED.
_SPECIAL_RE = re.compile(r"^(\d*L|\d+W|LW|.*#.*)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# How far ahead a cron expression is searched for its next time before it is called "never".
_SEARCH_DAYS = 366 * 5


class UnsupportedSchedule(ValueError):
    pass


class Schedule(Protocol):
    def next_after(self, moment: float) -> float | None:
        """The first firing time strictly after `moment` (epoch seconds), None if never."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Every:
    """A fixed period: `rate(...)` expressions, and every schedule in --fast mode."""

    seconds: float
    text: str = ""

    def next_after(self, moment: float) -> float:
        return moment + self.seconds

    def describe(self) -> str:
        return self.text or f"every {self.seconds:g} s"


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?" (any)
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1-7 = SUN-SAT; None: "?" (any)
    years: frozenset[int]
    text: str

    def next_after(self, moment: float) -> float | None:
        t = datetime.datetime.fromtimestamp(moment, _UTC).replace(second=0, microsecond=0)
        t += datetime.timedelta(minutes=1)
        limit = t + datetime.timedelta(days=_SEARCH_DAYS)
        while t < limit:
            if not self._day_matches(t):
                t = (t + datetime.timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + datetime.timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t += datetime.timedelta(minutes=1)
            else:
                return t.timestamp()
        return None

    def _day_matches(self, t: datetime.datetime) -> bool:
        if t.year not in self.years or t.month not in self.months:
            return False
        if self.days_of_month is not None and t.day not in self.days_of_month:
            return False
        aws_weekday = (t.weekday() + 1) % 7 + 1  # Monday is 0 in Python, 2 in EventBridge
        return self.days_of_week is None or aws_weekday in self.days_of_week

    def describe(self) -> str:
        return self.text


def expression_text(expression: Any) -> str:
    """A string expression as is; Chalice's Rate and Cron objects through their to_string()."""
    if isinstance(expression, str):
        return expression.strip()
    to_string = getattr(expression, "to_string", None)
    if callable(to_string):
        return str(to_string()).strip()
    raise UnsupportedSchedule(f"not a schedule expression: {expression!r}")


def parse_schedule(expression: Any) -> Schedule:
    text = expression_text(expression)
    rate = _RATE_RE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2).lower().rstrip("s")
        if value < 1:
            raise UnsupportedSchedule(f"{text}: the rate must be at least 1")
        return Every(float(value * _UNIT_SECONDS[unit]), text)
    cron = _CRON_RE.match(text)
    if cron:
        return _parse_cron(cron.group(1), text)
    raise UnsupportedSchedule(f"{text}: expected rate(<n> <unit>) or cron(<six fields>)")


def _parse_cron(body: str, text: str) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise UnsupportedSchedule(f"{text}: cron needs six fields")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise UnsupportedSchedule(f"{text}: exactly one of day-of-month and day-of-week is '?'")
    return CronSchedule(
        minutes=_field(minutes, 0, 59, {}, text),
        hours=_field(hours, 0, 23, {}, text),
        days_of_month=None if dom == "?" else _field(dom, 1, 31, {}, text),
        months=_field(month, 1, 12, _MONTHS, text),
        days_of_week=None if dow == "?" else _field(dow, 1, 7, _DAYS, text),
        years=_field(year, 1970, 2199, {}, text),
        text=text,
    )


def _field(spec: str, low: int, high: int, names: dict[str, int], text: str) -> frozenset[int]:
    values: set[int] = set()
    for item in spec.upper().split(","):
        if _SPECIAL_RE.match(item):
            raise UnsupportedSchedule(f"{text}: '{item}' (L, W and #) is not supported locally")
        part, step = item, 1
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = _number(step_text, {}, text)
            if step < 1:
                raise UnsupportedSchedule(f"{text}: a step must be at least 1")
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _number(a, names, text), _number(b, names, text)
        else:
            first = _number(part, names, text)
            last = high if step > 1 else first
        if not low <= first <= last <= high:
            raise UnsupportedSchedule(f"{text}: '{part}' is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(token: str, names: dict[str, int], text: str) -> int:
    if token in names:
        return names[token]
    if not token.isdigit():
        raise UnsupportedSchedule(f"{text}: '{token}' is not a number")
    return int(token)
