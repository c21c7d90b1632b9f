"""Time constants and rule windows shared by the whole package: one definition each.

>>> DAY_S, HOURS_PER_WEEK, REPEAT_WINDOW_S / HOUR_S
(86400.0, 168, 72.0)
"""
from __future__ import annotations

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
HOURS_PER_DAY = 24
DAYS_PER_WEEK = 7
HOURS_PER_WEEK = HOURS_PER_DAY * DAYS_PER_WEEK
WEEK_S = DAYS_PER_WEEK * DAY_S
#: A contact counts as a repeat when the same customer calls again within this window; it is
#: also how long a real log's resolution label takes to mature.
REPEAT_WINDOW_S = 72 * HOUR_S
