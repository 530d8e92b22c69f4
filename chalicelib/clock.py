"""The injected clock: everything that depends on time takes one, so tests set time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

MS_PER_SECOND = 1000
MS_PER_HOUR = 3600 * MS_PER_SECOND
MS_PER_DAY = 24 * MS_PER_HOUR


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


@dataclass
class FixedClock:
    """A clock that moves only when told to: for tests and benchmarks."""

    current_ms: int = field(default=1_700_000_000_000)

    def now_ms(self) -> int:
        return self.current_ms

    def advance(self, ms: int) -> None:
        self.current_ms += ms
