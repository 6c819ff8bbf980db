"""The observation window: a start date and a length in days; everything inside is a day offset.

Generation works on integer day offsets from the window start (fast, vectorised); dates become
ISO 8601 strings only when tables are written. The window is fixed by arguments, never by the
wall clock, so the same arguments always give the same dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Window:
    start: date
    days: int

    @classmethod
    def of_months(cls, start: date, months: int) -> Window:
        """The window from `start` to the same day `months` calendar months later."""
        years, month_index = divmod(start.month - 1 + months, 12)
        end = date(start.year + years, month_index + 1, min(start.day, 28))
        return cls(start=start, days=(end - start).days)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days)

    @property
    def years(self) -> float:
        return self.days / 365.25

    def dates(self, offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
        return np.datetime64(self.start, "D") + offsets.astype("timedelta64[D]")

    def iso(self, offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
        """ISO 8601 dates (YYYY-MM-DD) for day offsets."""
        return np.datetime_as_string(self.dates(offsets), unit="D")


def iso_days(days: npt.NDArray[np.datetime64]) -> npt.NDArray[np.str_]:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
