"""payments-delivered on the lab: nothing the service accepted is lost (harness/lab/payments.py).

payments-delivered  within (after the fault is reverted; default 30 s), max-lost
                    (default 0), min-queued (default 1).
  Counts every payment the api replicas accepted since the run started (their logs
  ``<run_dir>/acks/payments/<replica>.log``: ``id epoch sent|queued``) and every one the
  dependency received (its ledger ``<run_dir>/data/payments-ledger.log``). After the
  revert it waits up to ``within`` for the queue to drain: passes when every accepted
  payment reached the dependency (lost <= max-lost) and at least ``min-queued`` were
  queued (otherwise the queue was never exercised: "could not verify").
"""
from __future__ import annotations

import time
from pathlib import Path

from harness.checks.base import Check, CheckResult, RunClock, unverified
from harness.lab.dependency import ledger_path
from harness.quantities import format_duration, parse_duration
from harness.targets import registry


def _read(path: Path) -> list[list[str]]:
    try:
        return [line.split() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def accepted_payments(run_dir: Path, since: float) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    for f in sorted((run_dir / "acks" / "payments").glob("*.log")):
        for parts in _read(f):
            if len(parts) >= 3 and float(parts[1]) >= since:
                out[parts[0]] = (float(parts[1]), parts[2])
    return out


def delivered_payments(cfg) -> dict[str, float]:
    return {p[0]: float(p[1]) for p in _read(Path(ledger_path(cfg))) if len(p) >= 2}


@registry.check("lab")
class LabPaymentsDelivered(Check):
    kind = "payments-delivered"

    def run(self, clock: RunClock) -> CheckResult:
        cfg = self.target.cfg
        within = parse_duration(self.params.get("within", 30.0))
        max_lost = int(self.params.get("max-lost", 0))
        min_queued = int(self.params.get("min-queued", 1))
        since = clock.started_at
        # Until the fault is reverted, then until the queue drained or time is up.
        while not clock.reverted.is_set():
            if clock.stop.wait(0.25) and not clock.reverted.is_set():
                break
        reverted_at = clock.reverted_at or time.time()
        deadline = reverted_at + within
        evidence = []
        try:
            while True:
                cutoff = time.time() - 1.0  # accepted this long ago: sent or queued for sure
                accepted = {k: v for k, v in accepted_payments(cfg.root, since).items() if v[0] <= cutoff}
                delivered = delivered_payments(cfg)
                missing = [k for k in accepted if k not in delivered]
                if not missing or time.time() >= deadline:
                    break
                time.sleep(0.5)
        except (OSError, ValueError) as exc:
            return unverified(self.kind, f"the payment logs could not be read: {exc}")
        queued = [k for k, (_, how) in accepted.items() if how == "queued"]
        drained = [delivered[k] for k in queued if k in delivered]
        measured = {
            "accepted": len(accepted), "sent_at_once": len(accepted) - len(queued), "queued": len(queued),
            "delivered": len(accepted) - len(missing), "lost": len(missing), "max_lost": max_lost,
            "lost_examples": missing[:5], "within_s": within,
        }
        if drained:
            measured["drained_after_revert_s"] = round(max(drained) - reverted_at, 3)
        evidence = [f"service logs {cfg.root / 'acks' / 'payments'}: {len(accepted)} accepted since the run started",
                    f"dependency ledger {ledger_path(cfg)}: {len(delivered)} received",
                    "phase: from the run's start to the drain after the revert"]
        if not accepted:
            return unverified(self.kind, "no payment was accepted during the run (does the load send "
                              "POST /api/payments?)", measured, evidence)
        if len(queued) < min_queued:
            return unverified(self.kind, f"only {len(queued)} payment(s) were queued (at least {min_queued} "
                              "needed): the queue was never exercised", measured, evidence)
        if len(missing) > max_lost:
            return CheckResult(self.kind, False,
                               f"{len(missing)} of {len(accepted)} accepted payments were lost: they never reached "
                               f"the dependency within {format_duration(within)} of the revert ({len(queued)} had "
                               f"been queued, {len(drained)} of them delivered)", measured, evidence)
        drain = f", drained {format_duration(measured['drained_after_revert_s'])} after the revert" if drained else ""
        return CheckResult(self.kind, True,
                           f"all {len(accepted)} accepted payments reached the dependency ({len(queued)} queued while it "
                           f"was down{drain}; lost {len(missing)} <= {max_lost})", measured, evidence)
