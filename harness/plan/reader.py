"""Reading a plan file: positions kept for every error, numbers with their sources,
severities, durations, clock times and days."""
from __future__ import annotations

import re
from datetime import time as dtime
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from harness.errors import Problem
from harness.plan.model import (
    Period,
    DAYS,
    DEFAULT_SEVERITIES,
    Num,
    Source,
)
from harness.quantities import parse_duration


SEEDS = ("000", "001", "002", "003", "004", "lab", "plan")
OPS = (">", ">=", "<", "<=", "==", "!=")
AGGREGATES = ("sum", "max", "min", "avg", "count")


class _Bad(Exception):
    pass


class Reader:
    def __init__(self, path: str):
        self.path = path
        self.problems: list[Problem] = []

    # -- positions and problems --------------------------------------------------
    @staticmethod
    def pos(node: Any, key: Any = None) -> tuple[int, int]:
        try:
            if key is None:
                return node.lc.line + 1, node.lc.col + 1
            if isinstance(node, CommentedSeq):
                ln, col = node.lc.item(key)
            else:
                ln, col = node.lc.key(key)
            return ln + 1, col + 1
        except Exception:  # noqa: BLE001 - best effort
            return 0, 0

    def problem(self, node: Any, key: Any, message: str) -> None:
        line, col = self.pos(node, key)
        self.problems.append(Problem(self.path, line, col, message))

    def fail(self, node: Any, key: Any, message: str):
        self.problem(node, key, message)
        raise _Bad(message)

    # -- typed getters -------------------------------------------------------------
    def mapping(self, node: Any, key: str, required: bool = True) -> CommentedMap | None:
        if key not in node:
            if required:
                self.fail(node, None, f"'{key}' is missing")
            return None
        v = node[key]
        if not isinstance(v, CommentedMap):
            self.fail(node, key, f"'{key}' must be a mapping")
        return v

    def text(self, node: Any, key: str, required: bool = True, default: str = "") -> str:
        if key not in node:
            if required:
                self.fail(node, None, f"'{key}' is missing")
            return default
        v = node[key]
        if not isinstance(v, str) or not v.strip():
            self.fail(node, key, f"'{key}' must be a non-empty string")
        return v

    def known_keys(self, node: CommentedMap, allowed: set[str], where: str) -> None:
        for k in node:
            if k not in allowed:
                self.problem(node, k, f"unknown key '{k}' in {where} (allowed: {', '.join(sorted(allowed))})")

    def source(self, node: Any, key: str = "source", inherited: Source | None = None) -> Source:
        if key not in node:
            if inherited is not None:
                return inherited
            self.fail(node, None, "every number needs a 'source: {seed, section, example}' "
                                  "(seed 000-004, 'lab' for a value chosen for the lab, 'plan' for one "
                                  "the plan chose because no seed gives it)")
        s = node[key]
        if not isinstance(s, CommentedMap):
            self.fail(node, key, "'source' must be a mapping {seed, section, example}")
        seed = str(s.get("seed", "")).strip()
        if seed.isdigit():
            seed = seed.zfill(3)
        if seed not in SEEDS:
            self.fail(s, "seed" if "seed" in s else None, f"source seed must be one of {', '.join(SEEDS)}, not {seed!r}")
        section = str(s.get("section", "")).strip()
        if seed not in ("lab", "plan") and not section:
            self.fail(s, None, "a seed source needs its 'section'")
        example = s.get("example", False)
        if not isinstance(example, bool):
            self.fail(s, "example", "'example' must be true or false")
        self.known_keys(s, {"seed", "section", "example", "note"}, "source")
        return Source(seed, section, example, str(s.get("note", "")).strip())

    def num(self, node: Any, key: str, kind: str, inherited: Source | None, required: bool = True) -> Num | None:
        """A number: kind "duration" (seconds), "ratio" (99.9% -> 0.999), "int", "float"."""
        if key not in node:
            if required:
                self.fail(node, None, f"'{key}' is missing")
            return None
        raw = node[key]
        src = inherited
        holder, hkey = node, key
        if isinstance(raw, CommentedMap):
            if "value" not in raw:
                self.fail(raw, None, f"'{key}' as a mapping needs 'value' (and 'source')")
            src = self.source(raw, inherited=inherited)
            holder, hkey = raw, "value"
            raw = raw["value"]
        if src is None:
            self.fail(node, key, f"'{key}' has no source: give the item a 'source' or write "
                                 f"'{key}: {{value: ..., source: {{seed, section, example}}}}'")
        line = self.pos(holder, hkey)[0]
        try:
            value = _convert(raw, kind)
        except ValueError as exc:
            self.fail(holder, hkey, f"'{key}': {exc}")
        return Num(value, str(raw), src, line)


def _convert(raw: Any, kind: str) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a {kind}, got {raw!r}")
    if kind == "duration":
        if isinstance(raw, str) and raw.strip().endswith("d"):
            return float(raw.strip()[:-1]) * 86400.0
        if isinstance(raw, str) and raw.strip().endswith("w"):
            return float(raw.strip()[:-1]) * 7 * 86400.0
        return parse_duration(raw)
    if kind == "ratio":
        if isinstance(raw, str) and raw.strip().endswith("%"):
            return float(raw.strip()[:-1]) / 100.0
        v = float(raw)
        if not 0 <= v <= 1:
            raise ValueError(f"a ratio is between 0 and 1 (or write a percentage like 70%), got {raw!r}")
        return v
    if kind == "int":
        if isinstance(raw, int):
            return raw
        raise ValueError(f"expected a whole number, got {raw!r}")
    if isinstance(raw, str) and raw.strip().endswith("%"):
        return float(raw.strip()[:-1]) / 100.0
    if isinstance(raw, str) and re.match(r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$", raw):
        return parse_duration(raw)
    return float(raw)


def _clock(r: Reader, node: Any, key: str) -> dtime:
    v = str(node.get(key, ""))
    m = re.match(r"^(\d{1,2}):(\d{2})$", v)
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        r.fail(node, key if key in node else None, f"'{key}' must be a time HH:MM, got {v!r}")
    h, mnt = int(m.group(1)), int(m.group(2))
    return dtime(23, 59, 59) if h == 24 else dtime(h, mnt)


def _days(r: Reader, node: Any, key: str) -> tuple[str, ...]:
    v = node.get(key, [])
    if isinstance(v, str):
        if v == "weekdays":
            return DAYS[:5]
        if v in ("every day", "daily"):
            return ()
        v = [v]
    out = []
    for i, d in enumerate(v):
        d = str(d).lower()[:3]
        if d not in DAYS:
            r.fail(node[key], i, f"unknown day {v[i]!r} (mon..sun or 'weekdays')")
        out.append(d)
    return tuple(out)


# -- sections -------------------------------------------------------------------------
def _seq(r: Reader, doc: Any, key: str) -> CommentedSeq:
    seq = doc.get(key)
    if seq is None:
        return CommentedSeq()
    if not isinstance(seq, CommentedSeq):
        r.fail(doc, key, f"'{key}' must be a list")
    return seq


def _severities(r: Reader, doc: CommentedMap) -> tuple[tuple[str, ...], Source | None]:
    node = doc.get("severities")
    if node is None:
        return DEFAULT_SEVERITIES, None
    if not isinstance(node, CommentedMap) or not isinstance(node.get("levels"), CommentedSeq):
        r.fail(doc, "severities", "'severities' must be {levels: [P1, P2, ...], source: {...}}")
    r.known_keys(node, {"levels", "source"}, "severities")
    levels = tuple(str(x) for x in node["levels"])
    for i, lv in enumerate(levels):
        if not re.match(r"^[A-Za-z0-9_-]+$", lv):
            r.problem(node["levels"], i, f"severity {lv!r} must be letters, digits, - or _")
    if len(set(levels)) != len(levels):
        r.problem(node, "levels", "a severity is listed twice")
    return levels, r.source(node)


def _severity(r: Reader, node: Any, key: str, levels: tuple[str, ...]) -> str:
    v = node.get(key)
    if not isinstance(v, str) or v not in levels:
        r.fail(node, key if key in node else None,
               f"unknown severity {v!r}: this plan's severities are {', '.join(levels)}")
    return v


def _objective(r: Reader, node: Any, src: Source) -> Num:
    """Sloth's objective: a percentage (99.9) or "99.9%". Anything else is not a ratio."""
    raw = node.get("objective")
    line = r.pos(node, "objective")[0] if "objective" in node else r.pos(node)[0]
    value = None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw) / 100.0
    elif isinstance(raw, str) and re.match(r"^\s*\d+(\.\d+)?\s*%\s*$", raw):
        value = float(raw.strip()[:-1]) / 100.0
    if value is None or not 0.0 < value < 1.0:
        r.fail(node, "objective" if "objective" in node else None,
               f"objective must be a ratio: a percentage between 0 and 100 as Sloth writes it (99.9 or "
               f"'99.9%'), not {raw!r}. A latency SLO 'p95 <= 500ms' is objective 95 with "
               f"sli.plugin.options.threshold 500ms; a 100 % target has no error budget: list it under the "
               f"service's 'targets'")
    return Num(value, str(raw), src, line)


def _labels(r: Reader, node: Any, key: str) -> dict[str, str]:
    v = node.get(key) or {}
    if not isinstance(v, dict):
        r.fail(node, key, f"'{key}' must be a mapping of label names to values")
    return {str(k): str(x) for k, x in v.items()}

def _period(r: Reader, node: Any, inherited: Source | None) -> Period:
    r.known_keys(node, {"name", "days", "from", "to", "dates", "source"}, "a period")
    src = r.source(node, inherited=inherited)
    dates = tuple(str(d) for d in (node.get("dates") or []))
    for i, d in enumerate(dates):
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", d):
            r.fail(node["dates"], i, f"dates are YYYY-MM-DD, not {d!r}")
    return Period(str(node.get("name", "business hours")), _days(r, node, "days"), _clock(r, node, "from"),
                  _clock(r, node, "to"), dates, src)
