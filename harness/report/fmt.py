"""Formatting of journal values for people: tolerant readers (a missing or odd field is
None, never an exception) and the units a report shows (durations, percentages, epochs,
measured values inferred from their key's name). Used by harness.report.view and the
report's writers."""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from harness.quantities import parse_objective

if TYPE_CHECKING:
    from harness.report.view import RunView


def num(x: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def as_dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list:
    return x if isinstance(x, list) else []


def dicts(x: Any) -> list[dict]:
    return [d for d in as_list(x) if isinstance(d, dict)]


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = abs(seconds)
    if s < 1:
        return f"{seconds * 1000:.0f} ms"
    if s < 120:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_pct(ratio: float | None, digits: int = 3) -> str:
    if ratio is None:
        return "—"
    v = ratio * 100
    if v == 100 or v == 0:
        return f"{v:.0f}%"
    if 99 < v < 100:
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") + "%"
    return f"{v:.{max(1, digits - 2)}f}".rstrip("0").rstrip(".") + "%"


def fmt_int(n: float | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def fmt_epoch(t: float | None) -> str:
    if t is None:
        return "—"
    try:
        return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "—"


def pretty_key(key: str) -> str:
    return str(key).replace("_", " ").replace("-", " ").strip()


def measure_label(key: str) -> str:
    """'rto_seconds' -> 'RTO'; 'write_outage_seconds' -> 'write outage'."""
    k = re.sub(r"_(seconds|secs|s|ms)$", "", str(key))
    words = pretty_key(k).split()
    return " ".join(w.upper() if w.lower() in ("mttd", "mttr", "rto", "rpo") else w for w in words)


def slo_objective(slo: dict) -> tuple[str, float, str] | None:
    """(op, value in base units, unit) of an SLO result: the numbers the run kept
    (``objective_op``/``objective_value``/``unit``); journals written before they were
    kept are read with the one objective parser (harness.quantities)."""
    if slo.get("objective_value") is not None and slo.get("objective_op"):
        return str(slo["objective_op"]), float(slo["objective_value"]), str(slo.get("unit") or "number")
    try:
        o = parse_objective(slo.get("objective"))
    except ValueError:
        return None
    return o.op, o.value, o.unit


def compact(value: Any, limit: int = 160) -> str:
    try:
        s = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        s = str(value)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def fmt_measured(key: str, value: Any, view: RunView | None = None) -> str:
    """A measured value as a person reads it, inferred from the key's name."""
    k = str(key).lower()
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    n = num(value)
    if n is not None and not isinstance(value, str):
        if k.endswith("_at") and n > 1e9 and view is not None:
            return f"+{view.rel(n):.1f}s"
        if k.endswith(("_seconds", "_s", "_secs")) or k in ("seconds", "within", "mttd", "mttr", "rto", "rpo") \
                or re.search(r"(^|_)(mttd|mttr|rto|rpo)(_|$)", k) and not re.search(r"(writes|count|bytes)", k):
            return fmt_duration(n)
        if k.endswith(("_ms",)):
            return f"{n:g} ms"
        if "ratio" in k or k.endswith(("_fraction",)) or k == "availability":
            return fmt_pct(n)
        if k.endswith(("_pct", "_percent")):
            return f"{n:g}%"
        return f"{n:,.6g}" if abs(n) >= 1000 else f"{n:.6g}"
    if isinstance(value, (dict, list)):
        return compact(value)
    return str(value)
