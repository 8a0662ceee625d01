"""A tolerant view of one run's journal: what the report, the Markdown summary and the
index need, computed once, never raising for a missing or odd field.

The journal is a Chaos Toolkit journal plus the harness's record under ``harness``
(``harness.engine.results.RunResult`` as a dict). Every time in it is epoch seconds
except ``slo_results[].worst_at`` (seconds from run start); the report shows seconds
from the run's start everywhere.

Alerts (the alert checks are still being built) are read from any of:
  * events whose kind starts with ``alert`` or ``notification`` (``alert``/``name``,
    ``state``/``status``, ``receiver``, ``severity``; ``t`` epoch);
  * checks whose kind starts with ``alert`` (``measured.alert``; every measured key
    ending in ``_at`` holding an epoch becomes a point on the alert timeline).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from harness.report.fmt import (as_dict, as_list, compact, dicts, fmt_duration, fmt_epoch, fmt_int, fmt_measured,
                                fmt_pct, measure_label, num, pretty_key, slo_objective)
from harness.sli.vocabulary import error_budget

# The formatting helpers live in harness.report.fmt; the report's writers import them
# from here too.
__all__ = ["RunView", "Window", "Moment", "STATUS_COLOURS", "STATUS_WORDS", "STATUS_EMOJI", "PHASE_ORDER",
           "PHASE_NAMES", "HEADLINE_KEYS", "as_dict", "as_list", "compact", "dicts", "fmt_duration", "fmt_epoch",
           "fmt_int", "fmt_measured", "fmt_pct", "measure_label", "num", "pretty_key", "slo_objective"]

PHASE_ORDER = ("steady-state", "under-fault", "recovery")
PHASE_NAMES = {"steady-state": "steady state (before)", "under-fault": "under fault", "recovery": "recovery (after)"}

STATUS_COLOURS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "aborted": "#bc4c00",
    "not-steady": "#9a6700",
    "interrupted": "#57606a",
    "error": "#82071e",
    "unknown": "#57606a",
}
STATUS_WORDS = {
    "passed": "PASSED",
    "failed": "FAILED",
    "aborted": "ABORTED",
    "not-steady": "NOT STEADY",
    "interrupted": "INTERRUPTED",
    "error": "ERROR",
    "unknown": "UNKNOWN",
}
STATUS_EMOJI = {
    "passed": "✅", "failed": "❌", "aborted": "🛑", "not-steady": "⚠️",
    "interrupted": "⏹️", "error": "💥", "unknown": "❔",
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# measured keys that are headline numbers of drills and GameDays
HEADLINE_KEYS = re.compile(r"(^|_)(mttd|mttr|rto|rpo|write_outage|lost_writes|recovery)(_|$)", re.I)


@dataclass
class Window:
    label: str
    kind: str
    start: float  # seconds from run start
    end: float
    reverted: bool = True
    details: dict = field(default_factory=dict)


@dataclass
class Moment:
    kind: str  # abort | breach | recovered | not-recovered | check | ...
    at: float  # seconds from run start
    label: str
    ok: bool | None = None


class RunView:
    def __init__(self, journal: Any, run_dir_name: str | None = None):
        self.j: dict = as_dict(journal)
        self.h: dict = as_dict(self.j.get("harness"))
        self.events = dicts(self.h.get("events"))
        self.client = sorted((r for r in dicts(self.h.get("client_series")) if num(r.get("t")) is not None),
                             key=lambda r: num(r["t"]))
        self.target = sorted((r for r in dicts(self.h.get("target_series")) if num(r.get("t")) is not None),
                             key=lambda r: num(r["t"]))
        self.server: dict[str, list[tuple[float, float | None]]] = {}
        for name, pts in as_dict(self.h.get("server_series")).items():
            rows = []
            for p in as_list(pts):
                if isinstance(p, (list, tuple)) and len(p) >= 2 and num(p[0]) is not None:
                    rows.append((num(p[0]), num(p[1])))
            if rows:
                self.server[str(name)] = sorted(rows, key=lambda r: r[0])
        self.slos = dicts(self.h.get("slo_results"))
        self.checks = dicts(self.h.get("checks"))
        self.faults = dicts(self.h.get("faults"))
        self.abort = as_dict(self.h.get("abort")) or None
        self.recovery = as_dict(self.h.get("recovery")) or None
        self.load = as_dict(self.h.get("load")) or None
        self.run_id = str(self.h.get("run_id") or run_dir_name or "run")
        self.started_at = num(self.h.get("started_at")) or self._first_time() or 0.0
        self.ended_at = num(self.h.get("ended_at")) or self._last_time() or self.started_at
        if self.ended_at < self.started_at:
            self.ended_at = self.started_at

    # -- basics ------------------------------------------------------------------------------
    def _times(self) -> list[float]:
        ts = [num(e.get("t")) for e in self.events] + [num(r.get("t")) for r in self.client + self.target]
        for f in self.faults:
            ts += [num(f.get("injected_at")), num(f.get("reverted_at"))]
        return [t for t in ts if t is not None]

    def _first_time(self) -> float | None:
        ts = self._times()
        return min(ts) if ts else None

    def _last_time(self) -> float | None:
        ts = self._times()
        return max(ts) if ts else None

    def rel(self, t: Any) -> float | None:
        t = num(t)
        return None if t is None else t - self.started_at

    @property
    def duration(self) -> float:
        return max(0.0, self.ended_at - self.started_at)

    @property
    def x_range(self) -> list[float]:
        last = self.duration
        for r in self.client + self.target:
            last = max(last, self.rel(r["t"]) or 0.0)
        return [0.0, max(1.0, last)]

    @property
    def title(self) -> str:
        return str(self.h.get("title") or as_dict(self.j.get("experiment")).get("title") or self.run_id)

    @property
    def experiment(self) -> str:
        return str(self.h.get("experiment") or "")

    @property
    def description(self) -> str:
        d = as_dict(self.j.get("experiment")).get("description")
        return " ".join(_CONTROL.sub(" ", str(d)).split()) if d else ""

    @property
    def target_desc(self) -> str:
        t = self.h.get("target")
        if isinstance(t, dict):
            kind = t.get("kind") or ""
            rest = ", ".join(f"{k} {v}" for k, v in t.items() if k != "kind" and v not in (None, ""))
            return f"{kind} ({rest})" if rest else str(kind)
        return str(t or "")

    @property
    def status(self) -> str:
        v = as_dict(self.h.get("verdict"))
        s = v.get("status")
        if isinstance(s, str) and s:
            return s if s in STATUS_WORDS else "unknown"
        # a plain Chaos Toolkit journal
        ctk = self.j.get("status")
        if ctk == "completed":
            return "failed" if self.j.get("deviated") else "passed"
        if ctk in ("failed", "aborted", "interrupted"):
            return {"failed": "failed", "aborted": "aborted", "interrupted": "interrupted"}[ctk]
        return "unknown"

    @property
    def reasons(self) -> list[str]:
        rs = [str(r) for r in as_list(as_dict(self.h.get("verdict")).get("reasons")) if r]
        if not rs and not self.h and self.j.get("status") not in (None, "completed"):
            rs = [f"Chaos Toolkit status {self.j.get('status')}"]
        return rs

    @property
    def colour(self) -> str:
        return STATUS_COLOURS.get(self.status, STATUS_COLOURS["unknown"])

    @property
    def word(self) -> str:
        return STATUS_WORDS.get(self.status, self.status.upper())

    # -- faults, phases, moments --------------------------------------------------------------
    def fault_windows(self) -> list[Window]:
        out = []
        end_of_run = self.x_range[1]
        for f in self.faults:
            start = self.rel(f.get("injected_at"))
            if start is None:
                continue
            end = self.rel(f.get("reverted_at"))
            label = str(f.get("description") or f.get("kind") or "fault")
            out.append(Window(label, str(f.get("kind") or ""), start, end if end is not None else end_of_run,
                              end is not None, as_dict(f.get("state"))))
        return out

    def phases(self) -> list[tuple[str, float, float]]:
        marks: list[tuple[float, str]] = []
        for e in self.events:
            if e.get("kind") == "phase" and num(e.get("t")) is not None:
                name = str(e.get("text") or "")
                if marks and marks[-1][1] == name:
                    continue
                marks.append((self.rel(e["t"]), name))
        out = []
        for i, (t, name) in enumerate(marks):
            end = marks[i + 1][0] if i + 1 < len(marks) else self.duration
            out.append((name, t, max(t, end)))
        return out

    def last_revert(self) -> float | None:
        ts = [self.rel(f.get("reverted_at")) for f in self.faults]
        ts = [t for t in ts if t is not None]
        return max(ts) if ts else None

    def moments(self) -> list[Moment]:
        out: list[Moment] = []
        if self.abort:
            at = self.rel(self.abort.get("at"))
            seen = self.rel(self.abort.get("breach_seen_at"))
            if seen is not None and (at is None or abs(at - seen) > 0.5):
                out.append(Moment("breach", seen, "breach seen", False))
            if at is not None:
                out.append(Moment("abort", at, f"ABORT +{at:.1f}s", False))
        rec = self.recovery
        ref = self.last_revert()
        if rec and ref is not None:
            secs = num(rec.get("seconds"))
            within = num(rec.get("within"))
            if secs is not None:
                out.append(Moment("recovered", ref + secs, f"steady again {fmt_duration(secs)} after revert",
                                  bool(rec.get("passed", True))))
            elif rec.get("passed") is False and within is not None:
                out.append(Moment("not-recovered", ref + within, f"not recovered in {within:g}s", False))
        return out

    # -- client-side numbers ------------------------------------------------------------------
    def client_totals(self, windows: list[Window] | None = None) -> tuple[int, int, int]:
        """(requests, failed, timeouts) over the run, or inside the given windows."""
        req = fail = to = 0
        for r in self.client:
            if windows is not None:
                t = self.rel(r["t"])
                # a row covers (t-1, t]
                if not any(w.start < t and t - 1 < w.end for w in windows):
                    continue
            req += int(num(r.get("rps")) or 0)
            fail += int(num(r.get("errors")) or 0)
            to += int(num(r.get("timeouts")) or 0)
        return req, fail, to

    def availability_objective(self) -> float | None:
        objs = []
        for s in self.slos:
            o = slo_objective(s)
            if str(s.get("sli") or s.get("label") or "").startswith("availability") and o \
                    and o[0] in (">=", ">", "==") and o[2] == "ratio":
                objs.append(o[1])
        return max(objs) if objs else None

    def latency_objectives(self) -> dict[str, float]:
        """{'p99': 0.5} from SLOs such as latency_p99 < 500ms."""
        out: dict[str, float] = {}
        for s in self.slos:
            m = re.match(r"latency_(p\d+)", str(s.get("sli") or ""))
            o = slo_objective(s)
            if m and o and o[2] == "seconds" and o[0] in ("<", "<=", "=="):
                out[m.group(1)] = min(o[1], out.get(m.group(1), o[1]))
        return out

    def budget(self) -> dict[str, Any]:
        """Error budget burnt during the run, counted in requests: the availability
        objective allows (1 - objective) x requests to fail."""
        req, fail, to = self.client_totals()
        obj = self.availability_objective()
        fw = self.fault_windows()
        freq, ffail, _ = self.client_totals(fw) if fw else (0, 0, 0)
        out: dict[str, Any] = {"requests": req, "failed": fail, "timeouts": to, "objective": obj,
                               "fault_requests": freq, "fault_failed": ffail,
                               "allowed": None, "burnt": None}
        if obj is not None and req:
            b = error_budget(obj, good=req - fail, total=req)  # the one error-budget function
            out["allowed"] = b["allowed"]
            out["burnt"] = b["share"] if b["share"] is not None else (0.0 if fail == 0 else math.inf)
        return out

    def worst_second(self, windows: list[Window] | None = None) -> dict[str, Any]:
        """Lowest per-second availability and highest per-second p99 (ms), optionally in windows."""
        worst_av = worst_p99 = None
        av_at = p99_at = None
        for r in self.client:
            t = self.rel(r["t"])
            if windows is not None and not any(w.start < t and t - 1 < w.end for w in windows):
                continue
            av, p99 = num(r.get("availability")), num(r.get("p99_ms"))
            if av is not None and (worst_av is None or av < worst_av):
                worst_av, av_at = av, t
            if p99 is not None and (worst_p99 is None or p99 > worst_p99):
                worst_p99, p99_at = p99, t
        return {"availability": worst_av, "availability_at": av_at, "p99_ms": worst_p99, "p99_at": p99_at}

    # -- SLOs and checks ------------------------------------------------------------------------
    def slos_sorted(self) -> list[dict]:
        order = {p: i for i, p in enumerate(PHASE_ORDER)}
        return sorted(self.slos, key=lambda s: (order.get(str(s.get("phase")), 9), str(s.get("label"))))

    def slo_matrix(self) -> list[tuple[str, str, dict[str, dict]]]:
        """[(label, objective, {phase: slo_result})], one row per SLO."""
        rows: dict[str, tuple[str, dict[str, dict]]] = {}
        for s in self.slos:
            label = str(s.get("label") or s.get("sli") or "SLO")
            rows.setdefault(label, (str(s.get("objective") or ""), {}))[1][str(s.get("phase") or "")] = s
        return [(label, obj, phases) for label, (obj, phases) in rows.items()]

    def alert_checks(self) -> list[dict]:
        return [c for c in self.checks if str(c.get("kind") or "").startswith("alert")]

    def alert_events(self) -> list[dict]:
        return [e for e in self.events
                if str(e.get("kind") or "").startswith(("alert", "notification")) and num(e.get("t")) is not None]

    def has_alerts(self) -> bool:
        return bool(self.alert_checks() or self.alert_events())

    def headline_measures(self) -> list[tuple[str, str, Any, bool | None]]:
        """(check kind, key, value, passed) of MTTD/MTTR/RTO/RPO-like measured values."""
        out = []
        for c in self.checks:
            for k, v in as_dict(c.get("measured")).items():
                if HEADLINE_KEYS.search(str(k)) and (num(v) is not None) and not str(k).endswith("_at"):
                    out.append((str(c.get("kind") or ""), str(k), v, c.get("passed")))
        return out

    def extra_sections(self) -> dict[str, Any]:
        """Top-level drill/gameday records (future): rendered generically."""
        out = {}
        for key in ("drill", "gameday"):
            for src in (self.h, self.j):
                if src.get(key):
                    out[key] = src[key]
                    break
        return out

    # -- the reason at the top ----------------------------------------------------------------
    def headline(self) -> str:
        s = self.status
        faults = ", ".join(w.label for w in self.fault_windows()) or "no fault"
        if s == "passed":
            rec = self.recovery and num(self.recovery.get("seconds"))
            tail = f"; steady again {fmt_duration(rec)} after the revert" if rec is not None else ""
            return f"The hypothesis held: every SLO and expectation was met while {faults} was active{tail}."
        if s == "failed":
            n = len(self.reasons)
            return f"The hypothesis was broken: {n} thing{'s' if n != 1 else ''} did not hold under {faults}."
        if s == "aborted":
            at = self.abort and self.rel(self.abort.get("at"))
            when = f" at +{at:.1f}s" if at is not None else ""
            return f"The run was stopped{when} by an abort condition; every fault was reverted."
        if s == "not-steady":
            return "The system was not in its steady state before injection: nothing was injected."
        if s == "interrupted":
            return "The run was interrupted (Ctrl-C or a signal); every fault was reverted."
        if s == "error":
            return "The run could not complete."
        return "The verdict is unknown."

    def why(self) -> list[tuple[str, bool | None]]:
        """Sentences for the banner: (text, ok). Failures first; a passed run says what held."""
        out: list[tuple[str, bool | None]] = [(r, False) for r in self.reasons]
        if self.status == "aborted" and self.abort:
            obs = self.abort.get("observed")
            cond = self.abort.get("condition")
            seen = self.rel(self.abort.get("breach_seen_at"))
            bits = []
            if cond:
                bits.append(f"condition: {cond}")
            if num(obs) is not None:
                bits.append(f"observed value {num(obs):.4g}")
            if seen is not None:
                bits.append(f"breach first seen at +{seen:.1f}s")
            at = self.rel(self.abort.get("at"))
            if bits and not any(str(cond) in r for r, _ in out if cond):
                out.append(("; ".join(bits), False))
            elif seen is not None and (at is None or abs(at - seen) > 0.5):
                out.append((f"breach first seen at +{seen:.1f}s, stopped at +{at:.1f}s" if at is not None
                            else f"breach first seen at +{seen:.1f}s", None))
        if self.status == "passed" or not self.reasons:
            for label, obj, phases in self.slo_matrix():
                parts = [f"{PHASE_NAMES.get(p, p)} {phases[p].get('rendered') or '—'}"
                         for p in PHASE_ORDER if p in phases]
                parts += [f"{p} {s.get('rendered') or '—'}" for p, s in phases.items() if p not in PHASE_ORDER]
                ok = all(bool(s.get("passed")) for s in phases.values())
                if ok or self.status == "passed":
                    out.append((f"{label}: " + ", ".join(parts), ok))
            for c in self.checks:
                if c.get("passed"):
                    out.append((str(c.get("summary") or c.get("kind")), True))
            rec = self.recovery
            if rec and rec.get("passed") and num(rec.get("seconds")) is not None:
                out.append((f"steady state back {fmt_duration(num(rec.get('seconds')))} after the last revert "
                            f"(allowed {fmt_duration(num(rec.get('within')))})", True))
        return out
