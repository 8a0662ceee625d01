"""The run reports: HTML (verdict and reason at the top, charts, fault windows), Markdown
summary, index across runs, and robustness to missing fields.

Fixtures (tests/fixtures/):
  journal-passed.json   a real lab run of experiments/pod-kill.yaml (passed)
  journal-failed.json   hand-made from it: users hurt under the fault (availability 90.6 %,
                        p99 950 ms), the recovers check and recovery failed, an alert fired
  journal-aborted.json  hand-made from it: error_ratio > 20 % tripped at +14.2 s, the fault
                        was reverted then; DB roles per member in target_series; no
                        Prometheus series
"""
from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report import charts, charts_system
from harness.report.render import render_report, render_summary, write_index, write_reports
from harness.report.view import STATUS_COLOURS, RunView

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"journal-{name}.json").read_text())


@pytest.fixture(scope="module")
def journals() -> dict[str, dict]:
    return {n: load(n) for n in ("passed", "failed", "aborted")}


@pytest.fixture(scope="module")
def htmls(journals) -> dict[str, str]:
    return {n: render_report(j) for n, j in journals.items()}


class Outline(HTMLParser):
    """Records, in document order, the ids of elements and the text inside #why items."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.why: list[tuple[str, str]] = []  # (class, text)
        self._li: list | None = None
        self._in_why = False
        self.banner_style = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if a.get("id") == "verdict":
            self.banner_style = a.get("style", "")
        if a.get("id") == "why":
            self._in_why = True
        if tag == "li" and self._in_why:
            self._li = [a.get("class") or "", ""]

    def handle_endtag(self, tag):
        if tag == "li" and self._li is not None:
            self.why.append((self._li[0], self._li[1].strip()))
            self._li = None
        if tag == "ul" and self._in_why:
            self._in_why = False

    def handle_data(self, data):
        if self._li is not None:
            self._li[1] += data


def outline(html: str) -> Outline:
    o = Outline()
    o.feed(html)
    return o


def body_text(html: str) -> str:
    return html[html.index("<body"):]


# -- the verdict and its reason come first ---------------------------------------------------
@pytest.mark.parametrize("name,word", [("passed", "PASSED"), ("failed", "FAILED"), ("aborted", "ABORTED")])
def test_verdict_is_the_first_thing_on_the_page(htmls, journals, name, word):
    html = htmls[name]
    o = outline(html)
    # the banner, its word and the reasons list precede every chart and table
    assert o.ids[:3] == ["verdict", "verdict-word", "headline"]
    assert o.ids.index("why") < o.ids.index("tiles") < o.ids.index("overview") < o.ids.index("slos")
    assert re.search(rf'id="verdict-word">{word}<', html)
    assert f'data-verdict="{name}"' in html
    assert STATUS_COLOURS[name] in o.banner_style
    assert html.index("<title>").__lt__(html.index("<body"))
    assert f"<title>{word} " in html


def test_failed_report_lists_every_reason_at_the_top_marked_bad(htmls, journals):
    o = outline(htmls["failed"])
    bad = [t for c, t in o.why if c == "bad"]
    reasons = journals["failed"]["harness"]["verdict"]["reasons"]
    assert len(bad) == len(reasons) == 4
    for r in reasons:
        assert any(r in t for t in bad), r
    assert "The hypothesis was broken: 4 things did not hold" in htmls["failed"]


def test_aborted_report_says_what_tripped_when_and_that_faults_were_reverted(htmls):
    o = outline(htmls["aborted"])
    first = o.why[0]
    assert first[0] == "bad"
    assert "error_ratio > 20% for 2s" in first[1] and "+14.2s" in first[1] and "reverted" in first[1]
    # the breach was seen 2.1 s before the guard stopped the run: both moments are said
    assert any("breach first seen at +12.1s" in t for _, t in o.why)
    assert "stopped at +14.2s by an abort condition" in htmls["aborted"]


def test_passed_report_says_what_held(htmls):
    o = outline(htmls["passed"])
    assert o.why and all(c != "bad" for c, _ in o.why)
    texts = " | ".join(t for _, t in o.why)
    assert "availability >= 99% (users)" in texts and "under fault 100%" in texts
    assert "recovered 2.5s after the fault's inject" in texts
    assert "The hypothesis held" in htmls["passed"]


def test_the_three_verdicts_look_different(htmls):
    styles = {n: outline(h).banner_style for n, h in htmls.items()}
    assert len(set(styles.values())) == 3


# -- charts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["passed", "failed", "aborted"])
def test_time_charts_are_in_the_page_with_their_data(htmls, name):
    html = htmls[name]
    for cid in ("chart-timeline", "chart-availability", "chart-latency", "chart-throughput", "chart-errors",
                "chart-budget", "chart-target-replicas"):
        assert f'id="{cid}"' in html, cid
        assert re.search(r'Plotly\.newPlot\(\s*"%s"' % cid, html), cid


def test_plotly_is_inline_and_nothing_is_fetched_from_the_network(htmls):
    html = htmls["passed"]
    assert len(html) > 3_000_000  # plotly.js itself is in the file
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=[\"']https?:", html)


def _shape_names(fig) -> list[str]:
    return [s.name or "" for s in fig.layout.shapes]


@pytest.mark.parametrize("name", ["passed", "failed", "aborted"])
def test_every_time_chart_shades_the_fault_window_in_seconds_from_start(journals, name):
    view = RunView(journals[name])
    f = journals[name]["harness"]["faults"][0]
    start = f["injected_at"] - journals[name]["harness"]["started_at"]
    end = f["reverted_at"] - journals[name]["harness"]["started_at"]
    figs = charts.all_time_charts(view)
    assert len(figs) >= 8
    for cid, _, fig in figs:
        shapes = [s for s in fig.layout.shapes if (s.name or "").startswith("fault-window: pod-kill app=api count=1")]
        assert len(shapes) == 1, cid
        assert shapes[0].x0 == pytest.approx(start) and shapes[0].x1 == pytest.approx(end)
        assert shapes[0].yref == "paper"
        for tr in fig.data:
            xs = [x for x in (tr.x or ()) if isinstance(x, (int, float))]
            bases = [b for b in (getattr(tr, "base", None) or ()) if isinstance(b, (int, float))]
            assert all(-1 <= x <= view.duration + 2 for x in xs + bases), (cid, tr.name)


def test_abort_and_recovery_moments_are_marked(journals):
    aborted = RunView(journals["aborted"])
    for _, _, fig in charts.all_time_charts(aborted):
        names = _shape_names(fig)
        assert "moment: abort" in names and "moment: breach" in names
        ab = next(s for s in fig.layout.shapes if s.name == "moment: abort")
        assert ab.x0 == pytest.approx(14.2)
    passed = RunView(journals["passed"])
    h = journals["passed"]["harness"]
    rec_at = h["faults"][0]["reverted_at"] - h["started_at"] + h["recovery"]["seconds"]
    for _, _, fig in charts.all_time_charts(passed):
        r = [s for s in fig.layout.shapes if s.name == "moment: recovered"]
        assert len(r) == 1 and r[0].x0 == pytest.approx(rec_at)
        assert "moment: abort" not in _shape_names(fig)
    # a run that never recovered marks the deadline instead
    failed = RunView(journals["failed"])
    assert [m.kind for m in failed.moments()] == ["not-recovered"]


def test_replicas_and_other_target_keys_get_charts(journals):
    view = RunView(journals["aborted"])
    ids = [cid for cid, _, _ in charts.all_time_charts(view)]
    assert "chart-target-replicas" in ids
    assert "chart-target-cpu" in ids and "chart-target-active" in ids
    assert "chart-target-replication" in ids  # not lumped in with the replicas
    assert "chart-target-states" in ids  # DB role per member (text values)
    states = dict((cid, fig) for cid, _, fig in charts.all_time_charts(view))["chart-target-states"]
    lanes = {tr.y[0] for tr in states.data}
    assert lanes == {"db.pg a", "db.pg b", "db.pg c"}
    assert {tr.name for tr in states.data} == {"primary", "replica", "down"}
    # a role change is a new bar: pg-b was a replica, then the primary
    pgb = [(tr.base[0], tr.name) for tr in states.data if tr.y[0] == "db.pg b"]
    assert [n for _, n in sorted(pgb)] == ["replica", "primary"]


def test_replica_counts_reach_the_chart(journals):
    view = RunView(journals["passed"])
    fig = dict((cid, f) for cid, _, f in charts.all_time_charts(view))["chart-target-replicas"]
    by = {tr.name: list(tr.y) for tr in fig.data}
    assert set(by) == {"replicas desired", "replicas running", "replicas ready"}
    assert min(by["replicas ready"]) == 2 and max(by["replicas ready"]) == 3
    assert set(by["replicas desired"]) == {3}


def test_alert_timeline_when_alerts_are_recorded(htmls, journals):
    assert 'id="chart-alerts"' in htmls["failed"]
    assert 'id="chart-alerts"' not in htmls["passed"]
    assert "checks no alert" in htmls["passed"]
    fig = charts_system.alert_timeline(RunView(journals["failed"]))
    bars = {(tr.name, round(tr.base[0], 1)) for tr in fig.data if tr.type == "bar"}
    h = journals["failed"]["harness"]
    inj = h["faults"][0]["injected_at"] - h["started_at"]
    # pending then firing, each once although both the events and the check's measured values say so
    assert bars == {("pending", round(inj + 2.0, 1)), ("firing", round(inj + 6.1, 1))}
    points = sorted(tr.name for tr in fig.data if tr.type == "scatter")
    assert points == ["notification", "resolved"]


# -- numbers -----------------------------------------------------------------------------------
def test_every_slo_result_and_expectation_with_its_numbers(htmls, journals):
    html = htmls["failed"]
    slos = html[html.index('id="slos"'):html.index('id="checks"')]
    assert slos.count("<tr") == 1 + len(journals["failed"]["harness"]["slo_results"])
    assert "<b>90.6%</b>" in slos and "<b>950ms</b>" in slos and "70% at +13s" in slos
    assert slos.count("BROKEN") == 2
    checks = html[html.index('id="checks"'):html.index('id="budget"')]
    assert "NOT MET" in checks and "alert-fires" in checks
    assert "6.9 s" in checks  # mttd_seconds, rendered as a duration
    assert "NOT RECOVERED" in checks


def test_error_budget_is_counted_in_requests(journals, htmls):
    h = journals["failed"]["harness"]
    req = sum(r["rps"] for r in h["client_series"])
    failed = sum(r["errors"] for r in h["client_series"])
    b = RunView(journals["failed"]).budget()
    assert (b["requests"], b["failed"], b["objective"]) == (req, failed, 0.99)
    assert b["allowed"] == pytest.approx(req * 0.01)
    assert b["burnt"] == pytest.approx(failed / (req * 0.01))
    section = htmls["failed"][htmls["failed"].index('id="budget"'):]
    assert "Counted in <b>requests</b>" in section
    assert f"{b['burnt'] * 100:.1f}%" in section
    assert RunView(journals["passed"]).budget()["burnt"] == 0.0


def test_raw_events_are_collapsible_and_complete(htmls, journals):
    html = htmls["failed"]
    raw = html[html.index('<details id="raw-events"'):]
    raw = raw[:raw.index("</details>")]
    assert raw.count("<tr") == 1 + len(journals["failed"]["harness"]["events"])


# -- markdown ---------------------------------------------------------------------------------
def test_markdown_summary_carries_the_verdict_and_reasons(journals):
    md = {n: render_summary(j) for n, j in journals.items()}
    assert md["passed"].startswith("## ✅ PASSED: Killing one api replica")
    assert md["failed"].startswith("## ❌ FAILED")
    assert md["aborted"].startswith("## 🛑 ABORTED")
    for r in journals["failed"]["harness"]["verdict"]["reasons"]:
        assert f"- {r.replace('|', chr(92) + '|')}" in md["failed"]
    assert "| under fault | availability >= 99% (users) | >= 99% | **90.6%** | 70% at +13s | ❌ broken |" in md["failed"]
    assert "| recovers | ❌ not met |" in md["failed"]
    assert "2.5s after the fault's inject" in md["passed"] and "steady state back **20 ms**" in md["passed"]
    assert "### Abort" in md["aborted"] and "at +14.2s" in md["aborted"]
    assert "Error budget (counted in requests)" in md["passed"]
    assert "| pod-kill app=api count=1 | +11.3s | +26.3s | 15.0 s |" in md["passed"]


# -- files and the index ------------------------------------------------------------------------
def _runs(tmp_path: Path, journals: dict) -> Path:
    reports = tmp_path / "reports"
    for name in ("passed", "failed", "aborted"):
        j = journals[name]
        d = reports / j["harness"]["run_id"]
        d.mkdir(parents=True)
        (d / "journal.json").write_text(json.dumps(j))
        out = write_reports(j, d)
        assert out == d / "report.html" and out.is_file()
        assert (d / "summary.md").is_file()
    return reports


def test_write_reports_and_the_index_lists_every_run(tmp_path, journals):
    reports = _runs(tmp_path, journals)
    (reports / "not-a-run").mkdir()
    index = (reports / "index.html").read_text()
    for j in journals.values():
        rid = j["harness"]["run_id"]
        assert f'href="{rid}/report.html"' in index
    # the three runs are of the same experiment: 1 of 3 passed
    assert "experiments/pod-kill.yaml" in index and "1/3 (33%)" in index
    rows = index[index.index('id="runs"'):]
    order = [m.group(1) for m in re.finditer(r'<span class="mono">([^<]+)</span>', rows)]
    assert order == ["20261123-173000-pod-kill", "20261123-170000-pod-kill", "20261123-161816-pod-kill"]
    assert 'id="trend-recovery"' in index and 'id="trend-budget"' in index
    assert "ABORTED" in index and "FAILED" in index and "PASSED" in index


def test_index_survives_a_broken_journal(tmp_path, journals):
    reports = _runs(tmp_path, journals)
    bad = reports / "20261124-000000-broken"
    bad.mkdir()
    (bad / "journal.json").write_text("{not json")
    write_index(reports)
    index = (reports / "index.html").read_text()
    assert "20261124-000000-broken" in index and "20261123-161816-pod-kill" in index


@pytest.mark.parametrize("journal", [
    {},
    {"harness": None},
    {"status": "failed", "deviated": True, "experiment": {"title": "plain Chaos Toolkit journal"}},
    {"harness": {"verdict": "weird", "started_at": "x", "client_series": [1, "x", {"t": "bad"}, {"t": 5, "rps": None}],
                 "faults": [{"injected_at": None}, {"injected_at": 3, "reverted_at": None}, "junk"],
                 "slo_results": [None, {"phase": "under-fault"}], "checks": [{"measured": "no"}, {}],
                 "target_series": [{"t": 1, "x": {"y": [1]}}, {"t": 2, "role": "primary"}],
                 "server_series": {"a": [[1]], "b": "no"}, "abort": {"at": "soon"}, "recovery": {"seconds": "?"},
                 "events": [{"kind": "phase"}, {"t": 1, "kind": "alert"}]}},
])
def test_never_raises_for_missing_or_odd_fields(tmp_path, journal):
    out = write_reports(journal, tmp_path / "reports" / "run")
    html = out.read_text()
    assert 'id="verdict"' in html and "could not be rendered" not in html
    assert (tmp_path / "reports" / "run" / "summary.md").read_text().startswith("## ")
    assert (tmp_path / "reports" / "index.html").is_file()


def test_plain_chaos_toolkit_journal_gets_its_status():
    v = RunView({"status": "completed", "deviated": True})
    assert v.status == "failed"
    assert RunView({"status": "completed", "deviated": False}).status == "passed"


@pytest.mark.parametrize("status,word", [("not-steady", "NOT STEADY"), ("interrupted", "INTERRUPTED"), ("error", "ERROR")])
def test_other_verdicts_put_their_reason_at_the_top(journals, status, word):
    j = copy.deepcopy(journals["passed"])
    reason = {"not-steady": "not in steady state before injection; nothing was injected",
              "interrupted": "interrupted by the user; every fault was reverted", "error": "the run did not start"}[status]
    j["harness"]["verdict"] = {"status": status, "reasons": [reason]}
    html = render_report(j)
    o = outline(html)
    assert re.search(rf'id="verdict-word">{word}<', html)
    assert o.why[0] == ("bad", "✘" + reason)
    assert STATUS_COLOURS[status] in o.banner_style


def test_future_measured_values_and_drill_records_are_rendered_generically(journals):
    j = copy.deepcopy(journals["passed"])
    j["harness"]["checks"].append({"kind": "restore-drill", "passed": False, "summary": "restore took 1.5 h (RTO 1 h)",
                                   "measured": {"rto_seconds": 5400, "rpo_seconds": 60, "lost_writes": 0,
                                                "backup": {"label": "20261123-000000F"}, "restored_at": j["harness"]["ended_at"]}})
    j["harness"]["drill"] = {"backup_label": "20261123-000000F", "rto_seconds": 5400, "steps": [{"step": "restore"}]}
    html = render_report(j)
    tiles = html[html.index('id="tiles"'):html.index('id="overview"')]
    assert ">RTO<" in tiles and "1.5 h" in tiles and ">RPO<" in tiles and "60.0 s" in tiles
    checks = html[html.index('id="checks"'):html.index('id="budget"')]
    assert "restore-drill" in checks and "20261123-000000F" in checks and "+31.8s" in checks
    assert 'id="drill"' in html and "Restore drill" in html
    md = render_summary(j)
    assert "### Drill" in md and "rto seconds: 1.5 h" in md


def test_lab_db_role_codes_become_named_lanes(journals):
    """The lab reports db_role_<zone> as 2 primary / 1 replica / 0 not serving."""
    j = copy.deepcopy(journals["passed"])
    for i, r in enumerate(j["harness"]["target_series"]):
        r.update(db_role_a=2 if i < 5 else 0, db_role_b=1 if i < 8 else 2, db_role_c=1)
    figs = {cid: fig for cid, _, fig in charts.all_time_charts(RunView(j))}
    assert "chart-target-db" not in figs  # not drawn as numbers
    states = figs["chart-target-states"]
    assert states.layout.title.text == "<b>DB role per member</b>"
    lanes: dict[str, list[str]] = {}
    for tr in sorted(states.data, key=lambda tr: tr.base[0]):
        lanes.setdefault(tr.y[0], []).append(tr.name)
    assert lanes == {"db role a": ["primary", "not serving"], "db role b": ["replica", "primary"],
                     "db role c": ["replica"]}


def test_alert_check_times_relative_to_the_injection_reach_the_alert_timeline(journals):
    """The lab's alert-fires check measures fired_after_s / notified_after_s from the injection."""
    j = copy.deepcopy(journals["passed"])
    j["harness"]["checks"].append({"kind": "alert-fires", "passed": True, "summary": "alert ApiDown fired after 4.0s",
                                   "measured": {"alert": "ApiDown", "within_s": 30, "receiver": "critical",
                                                "fired_after_s": 4.0, "starts_at_after_s": 3.1,
                                                "notified_after_s": 5.5, "polls": 12}})
    view = RunView(j)
    inj = j["harness"]["faults"][0]["injected_at"] - j["harness"]["started_at"]
    fig = charts_system.alert_timeline(view)
    bars = [(tr.name, tr.base[0]) for tr in fig.data if tr.type == "bar"]
    points = [(tr.name, tr.x[0]) for tr in fig.data if tr.type == "scatter"]
    assert bars == [("firing", pytest.approx(inj + 4.0))]
    assert points == [("notification", pytest.approx(inj + 5.5))]
    html = render_report(j)
    assert 'id="chart-alerts"' in html
    checks = html[html.index('id="alerts"'):html.index('id="slos"')]
    assert "fired after" in checks and "4.0 s" in checks and "30.0 s" in checks


def test_index_counts_an_experiment_run_by_absolute_and_relative_path_as_one(tmp_path, journals, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "reports"
    for i, exp in enumerate(["experiments/pod-kill.yaml", str(tmp_path / "experiments" / "pod-kill.yaml")]):
        j = copy.deepcopy(journals["passed"])
        j["harness"]["experiment"] = exp
        j["harness"]["run_id"] = f"run-{i}"
        j["harness"]["started_at"] += i * 100
        (reports / f"run-{i}").mkdir(parents=True)
        (reports / f"run-{i}" / "journal.json").write_text(json.dumps(j))
        write_reports(j, reports / f"run-{i}")
    index = (reports / "index.html").read_text()
    table = index[index.index('id="experiments"'):index.index('id="trends"')]
    assert table.count("<b>experiments/pod-kill.yaml</b>") == 1 and "2/2 (100%)" in table
