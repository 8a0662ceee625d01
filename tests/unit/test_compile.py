"""How a harness experiment becomes a Chaos Toolkit experiment."""
import subprocess
import sys
from pathlib import Path

from harness.engine.run import Run
from harness.experiment.loader import load_experiment

from .support import NoTarget

ROOT = Path(__file__).resolve().parents[2]


def compiled(tmp_path, method_yaml):
    p = tmp_path / "e.yaml"
    p.write_text(f"""\
title: t
load: {{locustfile: {ROOT / 'load/api.py'}}}
steady-state: {{window: 5s, slo: {{availability: ">= 99%"}}}}
method:
{method_yaml}
abort-when: [{{elapsed: "> 5m"}}]
expect: [{{recovers: {{within: 10s}}}}]
rollbacks:
  - {{type: action, name: mine, provider: {{type: process, path: "true"}}}}
""")
    return Run(load_experiment(p), NoTarget(), report_dir=tmp_path).compile()


def names(doc):
    return [a["name"] for a in doc["method"]]


def test_sequential_steps_follow_each_other(tmp_path):
    doc = compiled(tmp_path, """\
  - {fault: zone-loss, zone: a, duration: 10s}
  - {pause: 5s}
  - {fault: pod-kill, selector: {app: api}, count: 1, duration: 3s}
""")
    assert names(doc) == [
        "inject zone-loss zone=a", "hold 10s", "revert zone-loss zone=a", "hold 5s",
        "inject pod-kill selector={'app': 'api'} count=1", "hold 3s",
        "revert pod-kill selector={'app': 'api'} count=1", "await recovery",
    ]


def test_concurrent_steps_overlap(tmp_path):
    doc = compiled(tmp_path, """\
  - {fault: zone-loss, zone: a, duration: 10s, concurrent: true}
  - {fault: network-latency, link: db, latency: 300ms, duration: 4s}
""")
    assert names(doc) == [
        "inject zone-loss zone=a", "inject network-latency link=db latency=300ms", "hold 4s",
        "revert network-latency link=db latency=300ms", "hold 6s", "revert zone-loss zone=a", "await recovery",
    ]


def test_hypothesis_and_rollbacks(tmp_path):
    doc = compiled(tmp_path, "  - {fault: zone-loss, zone: a, duration: 1s}\n")
    probes = [p["name"] for p in doc["steady-state-hypothesis"]["probes"]]
    assert probes == ["availability >= 99% (users)", "SLOs held while faults were active", "expectations met (recovers)"]
    # the user's rollbacks run, then the harness's safety net
    assert [r["name"] for r in doc["rollbacks"]] == ["mine", "revert every fault"]


def test_compiled_experiment_is_valid_for_chaoslib(tmp_path):
    from chaoslib.experiment import ensure_experiment_is_valid

    ensure_experiment_is_valid(compiled(tmp_path, "  - {fault: zone-loss, zone: a, duration: 1s}\n"))


def test_locust_is_never_imported_in_the_harness_process():
    """Locust monkey-patches ssl with gevent at import; after requests/chaoslib that
    crashed here. The harness keeps it in a child process: prove no module pulls it in."""
    code = ("import sys, harness.cli, harness.engine.run, harness.load.generator, harness.targets.lab, "
            "harness.pytest_plugin; assert 'locust' not in sys.modules and 'gevent' not in sys.modules, "
            "[m for m in sys.modules if m.startswith(('locust', 'gevent'))]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
