"""Values as Microsoft's OData services write them (ProjectData v3, Dataverse v4): one parser each.

Timestamps come as ISO 8601 (with or without ``Z``; naive ones are UTC) or, in verbose JSON and in
Dataverse's planned-work contours, as ``/Date(ms)/``; numbers as JSON numbers or text.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def odata_dt(value: Any) -> datetime | None:
    """``2026-01-05T08:00:00``, ``…Z``, ``…+01:00`` or ``/Date(ms)/`` → aware UTC; empty → None."""
    if value in (None, ""):
        return None
    m = _MS_DATE.fullmatch(str(value))
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def odata_date(value: Any) -> date | None:
    dt = odata_dt(value)
    return dt.date() if dt else None


def odata_number(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))
