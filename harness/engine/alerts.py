"""The alert timeline of a run: what Prometheus had pending/firing, and which
notifications reached the receivers, turned into run events as they happen."""
from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Emit = Callable[..., None]  # emit(kind, text, **data)


class AlertWatcher:
    def __init__(self, prometheus_url: str | None, notifications: Callable[[float], list[dict]] | None, emit: Emit):
        self.url = prometheus_url
        self.notifications = notifications
        self.emit = emit
        self.states: dict[str, str] = {}
        self.seen_notifications: set[tuple] = set()
        self.since: float | None = None

    def poll(self, now: float) -> None:
        if self.since is None:
            self.since = now
        if self.url:
            self._poll_prometheus()
        if self.notifications:
            try:
                for n in self.notifications(self.since):
                    key = (n.get("alert"), n.get("status"), n.get("receiver"), n.get("received_at"))
                    if key in self.seen_notifications:
                        continue
                    self.seen_notifications.add(key)
                    self.emit("notification", f"{n.get('alert')} {n.get('status')} -> {n.get('receiver')}",
                              alert=n.get("alert"), state=n.get("status"), receiver=n.get("receiver"),
                              at=n.get("received_at"))
            except Exception as exc:  # noqa: BLE001 - the timeline is best effort
                log.debug("notifications: %s", exc)

    def _poll_prometheus(self) -> None:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=0.8) as r:
                alerts: list[dict[str, Any]] = json.loads(r.read())["data"]["alerts"]
        except Exception as exc:  # noqa: BLE001
            log.debug("prometheus alerts: %s", exc)
            return
        current: dict[str, str] = {}
        for a in alerts:
            name = a.get("labels", {}).get("alertname", "?")
            # several series of one alert: firing wins over pending
            if current.get(name) != "firing":
                current[name] = a.get("state", "?")
        for name, state in current.items():
            if self.states.get(name) != state:
                self.emit("alert", f"{name} {state}", alert=name, state=state)
        for name in set(self.states) - set(current):
            self.emit("alert", f"{name} resolved", alert=name, state="resolved")
        self.states = current
