"""``harness plan test``: the plan's expectations run through the ecosystem's own tools.

* ``promtool test rules``: for every alert, synthetic input series put its indicator
  above its threshold (it must fire after its ``for``, and not before), and below it
  (it must stay silent). Burn-rate alerts get error ratios just above and below their
  burn factors. The harness only writes the inputs and reads promtool's verdict: rule
  evaluation is promtool's.
* ``amtool config routes test``: every severity reaches exactly the receivers the plan
  says; ``amtool check-config`` accepts the configuration; the plan's inhibitions are
  in it.

The same cases check rules the harness did not write (``--rules``, and ``plan check``
with a live Prometheus's rules).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import EnvironmentNotReady
from harness.plan.model import AlertRule, Plan, _prom_duration
from harness.sli import vocabulary

RATE = 100.0  # requests per second in synthetic series


@dataclass
class Result:
    rule: str
    ok: bool
    message: str
    source: str = ""
    kind: str = ""  # fires | silent | not-early | severity | route | inhibition | config | missing | for | ...
    skipped: bool = False
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "ok": self.ok, "kind": self.kind, "message": self.message,
                "source": self.source, **({"skipped": True} if self.skipped else {}),
                **({"detail": self.detail} if self.detail else {})}


@dataclass
class Case:
    alert: AlertRule
    kind: str  # fires | silent | not-early | severity
    value: float
    series: list[tuple[str, str]]  # (series, promtool values)
    interval: float
    eval_at: float
    expect: int
    text: str
    extra: dict = field(default_factory=dict)


def tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not path:
        pkg = "prometheus" if name == "promtool" else "prometheus-alertmanager"
        raise EnvironmentNotReady(f"{name} is not installed (Debian package {pkg}; ./dev.sh setup installs it)")
    return path


# -- synthetic series ------------------------------------------------------------------
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def concrete(selector: str) -> str:
    """A series for a selector: ``m{a="x",b!="y",c=~"5..",d!~"5.."}`` -> ``m{a="x",b="not-y",c="500",d="200"}``."""
    m = re.match(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*(\{(.*)\})?\s*$", selector)
    if not m:
        raise ValueError(f"cannot make a series for {selector!r}")
    name, body = m.group(1) or "", m.group(3) or ""
    labels = {}
    for k, op, v in _MATCHER.findall(body):
        if op == "=":
            labels[k] = v
        elif op == "!=":
            labels[k] = f"not-{v}" if v else "x"
        elif op == "=~":
            first = v.split("|")[0]
            labels[k] = "500" if first in ("5..", "5.*") else re.sub(r"[\\^$.*+?()\[\]]", "", first) or "x"
        else:  # !~
            labels[k] = "200" if v.startswith("5") else "zz"
    if name == "" and "__name__" in labels:
        name = labels.pop("__name__")
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _values(kind: str, amount: float, interval: float, steps: int) -> str:
    if kind == "gauge":
        return f"{amount:g}+0x{steps}"
    return f"0+{amount * interval:g}x{steps}"


def _counters_ratio(bad: str, total: str, ratio: float) -> list[tuple[str, str, float]]:
    bm, tm = bad.split("{")[0].strip(), total.split("{")[0].strip()
    if bm == tm:  # one metric, the bad ones by label: the rest must be good
        good = total.rstrip("}") + ("," if "{" in total and not total.rstrip().endswith("{}") else "{") + 'status="200"}'
        if "{" not in total:
            good = total + '{status="200"}'
        return [(bad, "counter", RATE * ratio), (good, "counter", RATE * (1 - ratio))]
    return [(bad, "counter", RATE * ratio), (total, "counter", RATE)]


def _sel(q: str) -> str:
    m = re.search(r"rate\(\s*(.+?)\s*\[\{\{\.window\}\}\]\s*\)", q)
    if not m:
        raise ValueError(f"cannot find rate(<selector>[{{{{.window}}}}]) in {q!r}")
    return m.group(1)


def indicator_series(a: AlertRule, value: float) -> list[tuple[str, str, float]] | None:
    ind = a.indicator
    if ind is None:
        return None
    if ind.kind == "sli":
        return [(s, "counter", r) for s, r in vocabulary.synthetic_series(ind.sli, value, ind.selector, RATE)]
    if ind.kind == "gauge":
        return [(ind.selector, "gauge", value)]
    if ind.kind == "rate":
        return [(ind.selector, "counter", value / parse_s(ind.per))]
    if ind.kind == "ratio":
        return _counters_ratio(ind.bad, ind.total, value)
    if ind.kind == "expr" and ind.testable:
        return [(s, k, value if fixed is None else fixed) for s, k, fixed in ind.test_series]
    return None


def parse_s(d: str) -> float:
    m = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$", str(d).strip())
    if not m:
        raise ValueError(f"not a duration: {d!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def probe_values(a: AlertRule) -> tuple[float, float] | None:
    """(a value that must fire, one that must not) for the alert's condition."""
    ind = a.indicator
    if ind is not None and ind.kind == "expr":
        if ind.test_fire is None:
            return None
        return ind.test_fire, ind.test_quiet if ind.test_quiet is not None else ind.test_fire
    if a.threshold is None:
        return None
    t = a.threshold.value
    is_ratio = (ind is not None and ind.kind in ("ratio",)) or (ind is not None and ind.kind == "sli" and
                                                                 vocabulary.SLIS[ind.sli].unit == "ratio")
    if a.op in (">", ">="):
        if t == 0:
            return 1.0, 0.0
        fire, quiet = t * 1.25, t * 0.8
        if is_ratio and fire >= 1:
            fire = (1 + t) / 2
        return fire, quiet
    if a.op in ("<", "<="):
        if is_ratio and t > 0.5:
            return 1 - (1 - t) * 1.25, 1 - (1 - t) * 0.8
        return t * 0.8, t * 1.25 if t else 1.0
    if a.op == "==":
        return t, t + 1
    return None


def _window(a: AlertRule) -> float:
    ind = a.indicator
    if ind is None:
        return 0.0
    if ind.kind in ("sli", "ratio"):
        return parse_s(ind.window)
    if ind.kind == "rate":
        return parse_s(ind.per)
    return 0.0


def _firing(name: str, severity: str | None = None) -> str:
    sev = f',severity="{severity}"' if severity else ""
    return f'(count(ALERTS{{alertname="{name}",alertstate="firing"{sev}}}) > bool 0) or vector(0)'


def cases_for(a: AlertRule, fast: bool = False, live_for: float | None = None) -> list[Case]:
    """The promtool cases of one alert. ``live_for``: the live rule's own ``for`` when it
    differs from the plan's (already reported), so the other cases judge only the rest."""
    if a.burn:
        return _burn_cases(a)
    probe = probe_values(a)
    if probe is None:
        return []
    fire, quiet = probe
    f = a.for_.value
    f_eff = max(f, live_for) if live_for is not None else f
    w = _window(a)
    interval = 1.0 if fast else (15.0 if max(w, f_eff) <= 3600 else 60.0)
    t_fire = w + f_eff + 3 * interval
    steps = int(t_fire / interval) + 5
    out = []

    def series(v):
        s = indicator_series(a, v) or []
        return [(concrete(sel), _values(kind, amt, interval, steps)) for sel, kind, amt in s]

    cond = f"{a.op} {a.threshold.text}" if a.threshold is not None else "its condition"
    out.append(Case(a, "fires", fire, series(fire), interval, t_fire, 1,
                    f"fires with the indicator at {fire:.4g} (plan: {cond} for {_prom_duration(f)})"))
    out.append(Case(a, "severity", fire, series(fire), interval, t_fire, 1,
                    f"fires with severity={a.severity}", {"severity": a.severity}))
    if quiet != fire:
        out.append(Case(a, "silent", quiet, series(quiet), interval, t_fire, 0,
                        f"stays silent with the indicator at {quiet:.4g} (plan: {cond})"))
    if f >= 2 * interval and live_for is None:
        out.append(Case(a, "not-early", fire, series(fire), interval, f - interval, 0,
                        f"does not fire before its for: {_prom_duration(f)}"))
    return out


def _burn_cases(a: AlertRule) -> list[Case]:
    from harness.plan.model import SLO

    slo: SLO | None = getattr(a, "_slo_obj", None)
    if slo is None:
        return []
    budget = 1 - slo.objective
    fastest, slowest = a.burn[0][2], a.burn[-1][2]
    fire_b = min(0.99, 1.25 * fastest * budget)
    quiet_b = 0.8 * slowest * budget
    interval = 60.0
    # The synthetic error ratio is constant from t=0, so every window reads it as soon as
    # it holds two samples: ten minutes judge both windows of every pair.
    t = 10 * interval
    steps = int(t / interval) + 5
    out = []
    for kind, b, expect, text in (("fires", fire_b, 1, f"fires at an error ratio of {fire_b:.4g} "
                                                         f"({fire_b / budget:.3g}x the budget)"),
                                  ("silent", quiet_b, 0, f"stays silent at an error ratio of {quiet_b:.4g} "
                                                          f"({quiet_b / budget:.3g}x the budget)")):
        s = _slo_series(slo, b)
        if s is None:
            return []
        out.append(Case(a, kind, b, [(concrete(sel), _values(k, amt, interval, steps)) for sel, k, amt in s],
                        interval, t, expect, text))
    return out


def _slo_series(slo, bad: float) -> list[tuple[str, str, float]] | None:
    if slo.sli_kind == "plugin":
        p = slo.plugin_id
        if p == "availability":
            v = 1 - bad
        else:
            v = bad
        thr = slo.threshold.value if slo.threshold else None
        return [(s, "counter", r) for s, r in vocabulary.synthetic_series(p, v, slo.selector, RATE, threshold=thr)]
    if slo.sli_kind == "events":
        try:
            return _counters_ratio(_sel(slo.error_query), _sel(slo.total_query), bad)
        except ValueError:
            return None
    return None


def attach_slos(plan: Plan) -> None:
    by_id = {s.id: s for s in plan.slos}
    for a in plan.alerts:
        if a.slo:
            object.__setattr__(a, "_slo_obj", by_id.get(a.slo))


# -- running promtool ------------------------------------------------------------------
def _test_file(rule_files: list[str], cases: list[Case]) -> dict[str, Any]:
    interval = min(c.interval for c in cases)
    tests = []
    for c in cases:
        tests.append({
            "interval": _prom_duration(c.interval),
            "input_series": [{"series": s, "values": v} for s, v in c.series],
            "promql_expr_test": [{"expr": _firing(c.alert.name, c.extra.get("severity")),
                                  "eval_time": _prom_duration(c.eval_at),
                                  "exp_samples": [{"labels": "{}", "value": c.expect}]}],
        })
    return {"rule_files": rule_files, "evaluation_interval": _prom_duration(interval), "tests": tests}


def run_promtool(rule_files: list[str], cases: list[Case], workdir: Path) -> tuple[bool, str]:
    f = workdir / f"test-{abs(hash(tuple(id(c) for c in cases)))}.yml"
    f.write_text(yaml.safe_dump(_test_file(rule_files, cases), sort_keys=False))
    p = subprocess.run([tool("promtool"), "test", "rules", str(f)], capture_output=True, text=True, timeout=300)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def check_rules(plan: Plan, rule_files: list[str], skip: dict[str, set[str]] | None = None,
                live_for: dict[str, float] | None = None, only: set[str] | None = None) -> list[Result]:
    """promtool verdicts for every alert of the plan against ``rule_files``."""
    attach_slos(plan)
    skip = skip or {}
    live_for = live_for or {}
    fast = plan.name == "lab" or all(a.for_.value <= 60 and _window(a) <= 60 for a in plan.alerts if not a.burn)
    out: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="plan-test-") as tmp:
        work = Path(tmp)
        rf = [str(Path(r).resolve()) for r in rule_files]
        # promtool must accept the rule files at all
        p = subprocess.run([tool("promtool"), "check", "rules", *rf], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            return [Result("rules", False, "promtool check rules rejects the rules: " + p.stdout.strip()[-800:]
                           + p.stderr.strip()[-800:], kind="config")]
        for a in plan.alerts:
            if only is not None and a.name not in only:
                continue
            all_cases = cases_for(a, fast, live_for.get(a.name))
            if not all_cases:
                out.append(Result(a.name, True, "not testable: a raw expr without a test block (or a raw SLI)",
                                  str(a.source), "fires", skipped=True))
                continue
            cs = [c for c in all_cases if c.kind not in skip.get(a.name, set())]
            if not cs:
                continue
            ok, _ = run_promtool(rf, cs, work)
            if ok:
                out.extend(Result(a.name, True, c.text, str(a.source), c.kind) for c in cs)
                continue
            for c in cs:  # attribute the failure case by case
                ok1, text = run_promtool(rf, [c], work)
                msg = c.text if ok1 else _failed(c)
                out.append(Result(a.name, ok1, msg, str(a.source), c.kind, detail="" if ok1 else text[-600:]))
    return out


def _failed(c: Case) -> str:
    a = c.alert
    if c.kind == "fires":
        return f"does not fire with the indicator at {c.value:.4g} within {_prom_duration(c.eval_at)}: " \
               f"{c.text.split('(', 1)[-1].rstrip(')')} -- threshold looser, for longer or an expression that " \
               f"cannot fire"
    if c.kind == "silent":
        return f"fires with the indicator at {c.value:.4g}, below the plan's threshold ({a.op} " \
               f"{a.threshold.text if a.threshold else '?'}): threshold tighter than the plan"
    if c.kind == "not-early":
        return f"fires before its for: {_prom_duration(a.for_.value)} (at {_prom_duration(c.eval_at)})"
    if c.kind == "severity":
        return f"fires, but not with severity={a.severity}"
    return "failed: " + c.text


# -- Alertmanager ----------------------------------------------------------------------
def check_alertmanager(plan: Plan, config_file: str, config: dict | None = None) -> list[Result]:
    out: list[Result] = []
    if plan.routing is None:
        return out
    amtool = tool("amtool")
    p = subprocess.run([amtool, "check-config", config_file], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return [Result("alertmanager config", False, "amtool check-config rejects it: " + (p.stdout + p.stderr)[-600:],
                       kind="config")]
    for sev in plan.severities:
        want = plan.routing.receivers_for(sev)
        labels = [f"severity={sev}", "alertname=PlanRouteTest"]
        p = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config_file}", *labels],
                           capture_output=True, text=True, timeout=60)
        got = [x.strip() for x in p.stdout.strip().splitlines()[-1].split(",")] if p.stdout.strip() else []
        srcs = "; ".join(sorted({str(r.source) for r in plan.routing.receivers if sev in r.severities}))
        ok = p.returncode == 0 and sorted(got) == sorted(want)
        msg = (f"severity {sev} reaches {', '.join(want)}" if ok else
               f"severity {sev} reaches {', '.join(got) or 'nothing'}; the plan says {', '.join(want)}")
        out.append(Result(f"route severity={sev}", ok, msg, srcs, "route"))
    conf = config if config is not None else yaml.safe_load(Path(config_file).read_text())
    out.extend(_config_facts(plan, conf or {}))
    return out


def _norm_matchers(ms) -> set[str]:
    out = set()
    for m in ms or []:
        m = str(m).replace(" ", "")
        k, op, v = re.match(r'^([^=!~]+)(=~|!~|!=|=)"?(.*?)"?$', m).groups()
        out.add(f"{k}{op}{v}")
    return out


def _legacy(d: dict | None, regex: bool = False) -> set[str]:
    return {f'{k}{"=~" if regex else "="}{v}' for k, v in (d or {}).items()}


def _config_facts(plan: Plan, conf: dict) -> list[Result]:
    out = []
    rt = plan.routing
    root = conf.get("route") or {}
    want = _prom_duration(rt.repeat_interval.value)
    got = root.get("repeat_interval", "4h")
    same = abs(parse_s(str(got)) - rt.repeat_interval.value) < 1e-6 if re.match(r"^\d+(ms|s|m|h|d)$", str(got)) \
        else False
    out.append(Result("repeat_interval", same, f"repeat_interval {got}" + ("" if same else f"; the plan says {want}"),
                      str(rt.repeat_interval.source), "repeat-interval"))
    live = []
    for r in conf.get("inhibit_rules") or []:
        live.append((_norm_matchers(r.get("source_matchers")) | _legacy(r.get("source_match")) |
                     _legacy(r.get("source_match_re"), True),
                     _norm_matchers(r.get("target_matchers")) | _legacy(r.get("target_match")) |
                     _legacy(r.get("target_match_re"), True), set(r.get("equal") or [])))
    for i in plan.inhibitions:
        s = _norm_matchers(i.matchers(i.source_match))
        t = _norm_matchers(i.matchers(i.target_match))
        ok = any(ls == s and lt == t and le == set(i.equal) for ls, lt, le in live)
        out.append(Result(f"inhibition '{i.name}'", ok,
                          f"{sorted(s)} inhibits {sorted(t)}" + ("" if ok else ": no such inhibit rule"),
                          str(i.source), "inhibition"))
    names = {t.get("name") for t in (conf.get("time_intervals") or []) + (conf.get("mute_time_intervals") or [])}
    for p in plan.maintenance:
        ok = p.name in names
        out.append(Result(f"maintenance window '{p.name}'", ok, "time interval defined" if ok else
                          "no time interval of that name", str(p.source), "time-interval"))
    return out


def run_plan_tests(plan: Plan, rules_files: list[str] | None = None, am_file: str | None = None) -> list[Result]:
    """Everything `harness plan test` runs for one plan."""
    from harness.plan.generate import alertmanager_config, prometheus_rules

    with tempfile.TemporaryDirectory(prefix="plan-rules-") as tmp:
        d = Path(tmp)
        if not rules_files:
            rf = d / "rules.yml"
            rf.write_text(yaml.safe_dump(prometheus_rules(plan, interval="1m", sli_records=True), sort_keys=False))
            rules_files = [str(rf)]
        out = check_rules(plan, rules_files)
        if plan.routing is not None:
            if am_file is None:
                af = d / "alertmanager.yml"
                af.write_text(yaml.safe_dump(alertmanager_config(plan, None), sort_keys=False))
                am_file = str(af)
            out.extend(check_alertmanager(plan, am_file))
    return out
