"""The GameDay's live console (rich): timeline, current SLIs, active faults, alerts as
they fire and are delivered; single keys for the facilitator.

Keys (read from the terminal in cbreak mode, so Ctrl-C still interrupts):
  d detected   a acknowledged   e escalated   m mitigated   r resolved
  n note: type the text, Enter records it (Esc cancels)
  q emergency stop: every fault is reverted at once (as Ctrl-C and `harness stop`)
Without a terminal (CI, ``--unattended``) no key is read and every event is also
printed as one line, so the job log tells the story.
"""
from __future__ import annotations

import os
import select
import sys
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

KEYS = {"d": "detected", "a": "acknowledged", "e": "escalated", "m": "mitigated", "r": "resolved"}
HELP = "d detected · a acknowledged · e escalated · m mitigated · r resolved · n note · q STOP (revert all)"
SHOWN = {"inject", "revert", "alert", "notification", "abort", "recovered", "not-recovered", "wait", "condition",
         "error", "interrupted", "check", "phase"}


class GameDayConsole:
    def __init__(self, console: Console | None = None, interactive: bool | None = None):
        self.console = console or Console()
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.gd = None
        self.lines: list[tuple[float, str, str]] = []  # (t, kind, text)
        self.note: str | None = None  # text being typed after 'n'
        self.question = ""
        self.live: Live | None = None
        self._stop = threading.Event()
        self._keys: threading.Thread | None = None

    # -- what the runner calls ----------------------------------------------------------------
    def __call__(self, event: str, **data: Any) -> None:
        gd = data.get("gd")
        if gd is not None:
            self.gd = gd
        if event == "start":
            self._start()
        elif event == "event":
            if data.get("kind") in SHOWN and not (data.get("kind") == "phase" and data.get("text") not in
                                                  ("method", "recovery", "verification")):
                self._line(data["kind"], data.get("text", ""))
        elif event == "gameday":
            rec = data["record"]
            if rec["kind"] == "checkpoint":
                self.question = rec["text"]
            self._line(f"* {rec['kind']}", rec["text"] + (f" ({rec['by']})" if rec["by"] != "facilitator" else ""))
        elif event == "scenario":
            sc = data["scenario"]
            self._line("scenario", f"{sc.experiment.title} [{sc.severity}]")
        elif event == "settle":
            self._line("settle", data.get("text", ""))
        elif event == "scenario-done":
            r = data["result"]
            self._line("verdict", f"{r.verdict.status}: {'; '.join(r.verdict.reasons)[:200]}")
        elif event == "done":
            self._done(data["record"])
        if self.live:
            self.live.refresh()

    def _line(self, kind: str, text: str) -> None:
        self.lines.append((time.time(), kind, text))
        if not self.console.is_terminal:
            self.console.print(f"{time.strftime('%H:%M:%S')} {kind:<13} {text}", markup=False, highlight=False)

    # -- live screen ----------------------------------------------------------------------------
    def _start(self) -> None:
        if self.console.is_terminal:
            self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4,
                             transient=False, redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        if self.interactive and not self.gd.unattended:
            self._keys = threading.Thread(target=self._read_keys, name="gameday-keys", daemon=True)
            self._keys.start()

    def _done(self, record: dict) -> None:
        self._stop.set()
        if self.live:
            self.live.refresh()
            self.live.stop()
            self.live = None
        card = record["scorecard"]
        t = Table("criterion", "measured", "result", title=f"GameDay scorecard: {'PASSED' if card['passed'] else 'FAILED'}")
        for c in card["criteria"]:
            t.add_row(c["name"], c["text"], {True: "[green]pass", False: "[red]FAIL", None: "[dim]not scored"}[c["passed"]])
        self.console.print(t)
        inc = Table("scenario", "fault", "MTTD", "MTTA", "MTTR")
        for i in card["incidents"]:
            inc.add_row(i["scenario"], i["fault"] or "", i["mttd"]["text"], i["mtta"]["text"], i["mttr"]["text"])
        self.console.print(inc)
        self.console.print(f"GameDay record: {record['out_dir']}/gameday.json, gameday.html, scorecard.md; "
                           "postmortem.md next to each run's report.html", markup=False)

    def render(self):
        gd = self.gd
        run = getattr(gd, "run", None)
        sc = getattr(gd, "current", None)
        now = time.time()
        head = Text()
        head.append(f"GameDay: {gd.gd.title}\n" if gd else "GameDay\n", style="bold")
        if sc is not None and run is not None:
            t0 = run.first_inject
            head.append(f"{sc.experiment.title} [{sc.severity}]  phase {run.phase}"
                        + (f"  +{now - t0:.0f}s since first inject" if t0 else ""))
        return Group(Panel(head), self._slis(run), self._faults_alerts(run), self._timeline(), self._footer())

    def _slis(self, run):
        t = Table("SLI (last 5 s, users)", "now", "objective", expand=True)
        if run is None or run.load is None:
            t.add_row("-", "no load yet", "")
            return t
        w = run.load.series.window(time.time() - 5, time.time())
        objectives = {s.sli: s.objective for s in (run.exp.steady_state.slos if run.exp.steady_state else ())}
        for name in ("availability", "error_ratio", "latency_p95", "throughput"):
            v = w.sli(name)
            obj = objectives.get(name)
            if v is None:
                shown = "no readings"
            elif name == "throughput":
                shown = f"{v:.0f} req/s"
            elif name.startswith("latency"):
                shown = f"{v * 1000:.0f} ms"
            else:
                shown = f"{v * 100:.2f} %"
            style = "" if obj is None or v is None else ("green" if obj.holds(v) else "bold red")
            t.add_row(name, Text(shown, style=style), str(obj) if obj else "")
        return t

    def _faults_alerts(self, run):
        t = Table("active faults", "alerts (Prometheus / delivered)", expand=True)
        faults = [f"{e.description} ({time.time() - (e.injected_at or time.time()):.0f}s)"
                  for _, e in list(run.journal.live.values())] if run else []
        states: dict[str, str] = {}
        for e in list(run.events) if run else []:
            if e["kind"] == "alert":
                states[e.get("alert")] = e.get("state")
            elif e["kind"] == "notification" and e.get("state") == "firing":
                states[e.get("alert")] = f"delivered -> {e.get('receiver')}"
        alerts = [f"{k}: {v}" for k, v in states.items() if v != "resolved"]
        t.add_row("\n".join(faults) or "none", "\n".join(alerts) or "none")
        return t

    def _timeline(self):
        t = Table("time", "event", "", expand=True, title="timeline")
        for ts, kind, text in self.lines[-12:]:
            t.add_row(time.strftime("%H:%M:%S", time.localtime(ts)), kind, text[:140])
        return t

    def _footer(self):
        if self.gd and self.gd.unattended:
            return Text("unattended: detected = first delivered alert, mitigated = SLOs back (Ctrl-C stops)")
        out = Text(HELP, style="bold")
        if self.question:
            out.append(f"\nquestion for the team: {self.question}", style="cyan")
        if self.note is not None:
            out.append(f"\nnote> {self.note}_", style="yellow")
        return out

    # -- keys -----------------------------------------------------------------------------------
    def _read_keys(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
                ch = os.read(fd, 1).decode(errors="replace")
                self.key(ch)
                if self.live:
                    self.live.refresh()
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

    def key(self, ch: str) -> None:
        gd = self.gd
        if gd is None:
            return
        if self.note is not None:
            if ch in ("\r", "\n"):
                text, self.note = self.note, None
                if text.strip():
                    gd.record("note", text.strip())
            elif ch == "\x1b":
                self.note = None
            elif ch in ("\x7f", "\b"):
                self.note = self.note[:-1]
            elif ch.isprintable():
                self.note += ch
            return
        if ch in KEYS:
            gd.record(KEYS[ch], f"recorded by the facilitator (key {ch})")
        elif ch == "n":
            self.note = ""
        elif ch == "q":
            gd.emergency_stop()
