"""`harness plan check` against monitoring the harness did not write: a real Prometheus
and a real Alertmanager started from the hand-written files in fixtures/handwritten/
(loopback, ports 24110-24111, data in a tmp dir, stopped at the end). Eight gaps are
planted; the check must report exactly those, each with the plan rule and its source."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.plan import load_plan
from harness.plan.cli import plan as plan_cli
from harness.plan.live import check_live

FIX = Path(__file__).parent / "fixtures"
PROM_PORT, AM_PORT = 24110, 24111

pytestmark = pytest.mark.skipif(not shutil.which("prometheus") or not shutil.which("prometheus-alertmanager"),
                                reason="prometheus / prometheus-alertmanager not installed (./dev.sh setup)")


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def handwritten_stack(tmp_path_factory):
    d = tmp_path_factory.mktemp("handwritten-stack")
    conf = (FIX / "handwritten" / "prometheus.yml").read_text()
    conf = conf.replace("RULES", str(FIX / "handwritten" / "rules.yml")).replace("AMPORT", str(AM_PORT))
    (d / "prometheus.yml").write_text(conf)
    procs = []
    try:
        am_log = (d / "am.log").open("w")
        am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={FIX / 'handwritten' / 'alertmanager.yml'}",
                               f"--storage.path={d / 'am'}", f"--web.listen-address=127.0.0.1:{AM_PORT}",
                               "--cluster.listen-address="], stdout=am_log, stderr=subprocess.STDOUT)
        procs.append(am)
        pr_log = (d / "prom.log").open("w")
        pr = subprocess.Popen(["prometheus", f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'prom'}",
                               f"--web.listen-address=127.0.0.1:{PROM_PORT}"], stdout=pr_log, stderr=subprocess.STDOUT)
        procs.append(pr)
        _wait(f"http://127.0.0.1:{AM_PORT}/-/ready", am, d / "am.log")
        _wait(f"http://127.0.0.1:{PROM_PORT}/-/ready", pr, d / "prom.log")
        deadline = time.time() + 20  # rules load right after ready
        while time.time() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{PROM_PORT}/api/v1/rules", timeout=2) as r:
                if json.loads(r.read())["data"]["groups"]:
                    break
            time.sleep(0.3)
        yield f"http://127.0.0.1:{PROM_PORT}", f"http://127.0.0.1:{AM_PORT}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


PLANTED = [
    ("ShopErrorRateWarning", "missing"),
    ("ShopErrorRateCritical", "fires"),       # threshold 5 % instead of 1 %
    ("ShopCpuHigh", "for"),                   # for 1m instead of 5m
    ("ShopMemoryHigh", "severity-label"),     # critical instead of warning
    ("ShopDiskFull", "fires"),                # metric-name typo: cannot fire
    ("route severity=warning", "route"),      # warning does not reach mail
    ("inhibition 'critical silences warning'", "inhibition"),
    ("repeat_interval", "repeat-interval"),   # 1h instead of 15m
]


def test_exactly_the_planted_gaps(handwritten_stack):
    prom, am = handwritten_stack
    plan = load_plan(FIX / "shop-plan.yaml")
    results = check_live(plan, prom, am)
    gaps = sorted((r.rule, r.kind) for r in results if not r.ok)
    assert gaps == sorted(PLANTED)
    by = {(r.rule, r.kind): r for r in results if not r.ok}
    assert "seed 002 §7.2 エラーレート 0.1%超 Warning" in by[("ShopErrorRateWarning", "missing")].source
    assert "for is 1m; the plan says 5m" in by[("ShopCpuHigh", "for")].message
    assert "'critical'; the plan says 'warning'" in by[("ShopMemoryHigh", "severity-label")].message
    assert "reaches chat; the plan says mail, chat" in by[("route severity=warning", "route")].message \
        or "the plan says mail, chat" in by[("route severity=warning", "route")].message
    assert "the plan says 15m" in by[("repeat_interval", "repeat-interval")].message
    # what holds, holds: ShopDown and ShopLatencyHigh are right in the hand-written rules
    assert all(r.ok for r in results if r.rule in ("ShopDown", "ShopLatencyHigh"))


def test_json_lists_the_gaps_and_exit_code(handwritten_stack):
    prom, am = handwritten_stack
    res = CliRunner().invoke(plan_cli, ["check", "--prometheus", prom, "--alertmanager", am,
                                        "--plan", str(FIX / "shop-plan.yaml"), "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert sorted((g["rule"], g["kind"]) for g in out["gaps"]) == sorted(PLANTED)
    assert all(g["source"] for g in out["gaps"])
