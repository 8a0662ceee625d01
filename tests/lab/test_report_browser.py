"""Issue 5's acceptance: the report of a REAL lab run, drawn by a real browser.

Runs experiments/pod-kill.yaml on the session lab, opens the run's report.html in
headless Debian Chromium (never a downloaded browser) with every non-file request
blocked, checks that each chart is drawn (SVG traces with geometry, the fault-window
shapes present and as wide as the fault), that the verdict is at the top, and saves a
full-page screenshot beside the report (report.png).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.targets import resolve_target

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

# For every plotly div: how many traces have drawn geometry, and the fault-window
# shapes (by layout name) with their drawn width in pixels.
PROBE = """
() => Array.from(document.querySelectorAll('div.plotly-graph-div')).map(gd => {
  const drawn = Array.from(gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace')).filter(tr =>
    Array.from(tr.querySelectorAll('path')).some(p => (p.getAttribute('d') || '').length > 10)).length;
  const shapes = (gd.layout && gd.layout.shapes) || [];
  const faults = [];
  shapes.forEach((s, i) => {
    if (!(s.name || '').startsWith('fault-window')) return;
    const el = gd.querySelector('.shapelayer path[data-index="' + i + '"]');
    const box = el ? el.getBBox() : null;
    faults.push({name: s.name, x0: s.x0, x1: s.x1, width: box ? box.width : 0, height: box ? box.height : 0});
  });
  return {id: gd.id, svgs: gd.querySelectorAll('svg.main-svg').length, traces: (gd.data || []).length,
          drawn: drawn, faults: faults};
})
"""


def _browser(p):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def _open_offline(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    fetched: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            fetched.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function("() => document.querySelectorAll('div.plotly-graph-div .main-svg').length > 0")
    return page, fetched, errors


@pytest.mark.lab
def test_report_of_a_real_run_is_drawn_in_chromium(harness_lab, tmp_path):
    from playwright.sync_api import sync_playwright

    exp = load_experiment(ROOT / "experiments" / "pod-kill.yaml")
    # lock_wait: on a shared machine another experiment may hold the run lock; queue behind it
    result = Run(exp, resolve_target("lab", harness_lab.cfg.run_dir), report_dir=tmp_path, lock_wait=300).execute()
    assert result.report_path, f"no report was written (verdict {result.verdict.status}: {result.verdict.reasons})"
    report = Path(result.report_path)
    journal = json.loads(Path(result.journal_path).read_text())
    assert journal["harness"]["faults"], f"nothing was injected: {result.verdict.status} {result.verdict.reasons}"
    fault = journal["harness"]["faults"][0]
    start = journal["harness"]["started_at"]

    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page, fetched, errors = _open_offline(browser, report.resolve().as_uri())
            charts = page.evaluate(PROBE)
            verdict = page.evaluate(
                "() => { const b = document.getElementById('verdict').getBoundingClientRect();"
                " return {top: b.top, height: b.height, word: document.getElementById('verdict-word').textContent,"
                " why: Array.from(document.querySelectorAll('#why li')).map(li => li.textContent)}; }")
            shot = report.with_name("report.png")
            page.screenshot(path=str(shot), full_page=True)

            index_page, index_fetched, index_errors = _open_offline(browser, (tmp_path / "index.html").resolve().as_uri())
            index_links = index_page.evaluate(
                "() => Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))")
            index_charts = index_page.evaluate(PROBE)
        finally:
            browser.close()

    print(f"\nreport: {report}\nscreenshot: {shot}")
    assert fetched == [] and index_fetched == [], f"the pages tried the network: {fetched + index_fetched}"
    assert errors == [] and index_errors == [], errors + index_errors

    # the verdict is the first thing on the page, with its reasons
    assert verdict["top"] <= 1 and verdict["height"] > 60
    assert verdict["word"] == {"passed": "PASSED", "failed": "FAILED", "aborted": "ABORTED"}.get(
        result.verdict.status, verdict["word"])
    for reason in result.verdict.reasons:
        assert any(reason in w for w in verdict["why"]), reason
    assert verdict["why"], "no sentence says why"

    by_id = {c["id"]: c for c in charts}
    for cid in ("chart-timeline", "chart-availability", "chart-latency", "chart-throughput", "chart-errors",
                "chart-budget", "chart-target-replicas"):
        assert cid in by_id, f"{cid} missing; drawn: {sorted(by_id)}"
    for c in charts:
        assert c["svgs"] >= 1, c
        assert c["traces"] > 0 and c["drawn"] == c["traces"], f"{c['id']}: {c['drawn']}/{c['traces']} traces drawn"
    # every time chart shades the fault window, drawn as wide as the fault lasted relative to the axis
    for cid, c in by_id.items():
        assert len(c["faults"]) == 1, f"{cid}: fault windows {c['faults']}"
        f = c["faults"][0]
        assert f["name"] == f"fault-window: {fault['description']}"
        assert f["x0"] == pytest.approx(fault["injected_at"] - start, abs=0.01)
        assert f["x1"] == pytest.approx(fault["reverted_at"] - start, abs=0.01)
        assert f["width"] > 20 and f["height"] > 20, f"{cid}: fault window drawn {f}"

    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000

    # the index lists the run and draws its trends
    assert f"{report.parent.name}/report.html" in index_links
    want = {"trend-budget"} | ({"trend-recovery"} if (result.recovery or {}).get("seconds") is not None else set())
    assert {c["id"] for c in index_charts} >= want
    assert all(c["drawn"] == c["traces"] > 0 for c in index_charts), index_charts
