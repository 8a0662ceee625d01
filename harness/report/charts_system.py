"""Charts of the system under test beside the users' view: the target's own gauges
(replicas, DB roles...), other server series, and the alert timeline."""
from __future__ import annotations

import re
from typing import Any

import plotly.graph_objects as go

from harness.report.view import RunView, fmt_duration, num, pretty_key
from harness.report.charts import (
    ALERT_COLOURS,
    _wrap,
    PALETTE,
    _layout,
    decorate,
)


def _flatten(row: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def target_series_keys(view: RunView) -> tuple[list[str], list[str]]:
    """(numeric keys, text keys) seen in target_series, in first-seen order."""
    numeric, text = [], []
    for r in view.target:
        for k, v in _flatten(r).items():
            if k == "t":
                continue
            if isinstance(v, bool) or num(v) is not None:
                if k not in numeric:
                    numeric.append(k)
            elif isinstance(v, str) and k not in text:
                text.append(k)
    text = [k for k in text if k not in numeric]
    return numeric, text


def _group_of(key: str) -> str:
    if re.match(r"^replicas?([._]|$)", key):
        return "replicas"
    return re.split(r"[._]", key, maxsplit=1)[0]


# The lab encodes the DB role per member as a number for charts (harness.targets.lab.target):
# shown as named states, one lane per member.
ROLE_KEY = re.compile(r"(^|[._])(db_)?role([._]|$)")
ROLE_CODES = {2: "primary", 1: "replica", 0: "not serving"}


def _role_rows(rows: list[dict], numeric: list[str]) -> tuple[list[dict], list[str]]:
    """Numeric role codes (0/1/2) become their names; returns (rows, the converted keys)."""
    keys = [k for k in numeric if ROLE_KEY.search(k)
            and all(num(r.get(k)) in (None, 0.0, 1.0, 2.0) for r in rows)]
    if not keys:
        return rows, []
    out = []
    for r in rows:
        r = dict(r)
        for k in keys:
            v = num(r.get(k))
            r[k] = None if v is None else ROLE_CODES[int(v)]
        out.append(r)
    return out, keys


def target_charts(view: RunView) -> list[tuple[str, go.Figure]]:
    numeric, text = target_series_keys(view)
    rows = [_flatten(r) for r in view.target]
    rows, roles = _role_rows(rows, numeric)
    numeric = [k for k in numeric if k not in roles]
    text = roles + text
    x = [round(view.rel(r["t"]), 2) for r in rows]
    groups: dict[str, list[str]] = {}
    for k in numeric:
        groups.setdefault(_group_of(k), []).append(k)
    out: list[tuple[str, go.Figure]] = []
    for group, keys in groups.items():
        fig = go.Figure()
        percent = all(("utili" in k or "ratio" in k) for k in keys) and all(
            (num(r.get(k)) or 0) <= 5 for r in rows for k in keys)
        for i, k in enumerate(keys):
            ys = []
            for r in rows:
                v = r.get(k)
                v = float(v) if isinstance(v, bool) else num(v)
                ys.append(None if v is None else (v * 100 if percent else v))
            integral = all(float(v).is_integer() for v in ys if v is not None)
            fig.add_trace(go.Scatter(x=x, y=ys, name=pretty_key(k), mode="lines+markers" if len(x) < 3 else "lines",
                                     line=dict(color=PALETTE[i % len(PALETTE)], width=2 if i == 0 else 1.6,
                                               shape="hv" if integral else "linear",
                                               dash=["solid", "dash", "dot", "dashdot"][i % 4] if group == "replicas" else "solid"),
                                     hovertemplate="%{y:.3g}" + ("%" if percent else "")))
        known = {"replicas": "Replicas — " + " / ".join(pretty_key(k).replace("replicas ", "") for k in keys),
                 "cpu": "CPU utilisation (share of the CPU request)", "active": "Active faults"}
        title = known.get(group) or (pretty_key(group).capitalize() if len(keys) > 1 else pretty_key(keys[0]).capitalize())
        decorate(fig, view)
        fig.update_layout(**_layout(view, title, "%" if percent else "", height=200 if group != "replicas" else 230))
        if group == "replicas" or all(float(v).is_integer() for r in rows for k in keys for v in [num(r.get(k))] if v is not None):
            fig.update_yaxes(rangemode="tozero", dtick=1 if max([num(r.get(k)) or 0 for r in rows for k in keys] + [0]) <= 10 else None)
        out.append((group, fig))
    if text:
        out.append(("states", _state_chart(view, rows, x, text)))
    return out


def _state_chart(view: RunView, rows: list[dict], x: list[float], keys: list[str]) -> go.Figure:
    """Text-valued series (e.g. the DB role of each member) as coloured lanes."""
    fig = go.Figure()
    values = sorted({str(r.get(k)) for r in rows for k in keys if isinstance(r.get(k), str)})
    colours = {"primary": "#0969da", "leader": "#0969da", "master": "#0969da", "replica": "#8cb4e6",
               "sync_standby": "#54aeff", "standby": "#8cb4e6", "down": "#cf222e", "stopped": "#cf222e",
               "not serving": "#cf222e", "unknown": "#d0d7de", "none": "#d0d7de"}
    auto = iter(PALETTE)
    for v in values:
        colours.setdefault(v.lower(), next(auto, "#8c959f"))
    shown: set[str] = set()
    for k in keys:
        i = 0
        while i < len(rows):
            v = rows[i].get(k)
            j = i
            while j + 1 < len(rows) and rows[j + 1].get(k) == v:
                j += 1
            if isinstance(v, str):
                t0 = x[i] - (x[i] - x[i - 1] if i > 0 else 0.5) / 2 if i else x[i] - 0.5
                t1 = x[j] + ((x[j + 1] - x[j]) / 2 if j + 1 < len(rows) else 0.5)
                fig.add_trace(go.Bar(y=[pretty_key(k)], x=[max(t1 - t0, 0.05)], base=[t0], orientation="h", name=v,
                                     legendgroup=v, showlegend=v not in shown, width=0.6,
                                     marker=dict(color=colours.get(v.lower(), "#8c959f"), line=dict(width=0)),
                                     text=[v], textposition="inside", insidetextanchor="middle",
                                     hovertemplate=f"{pretty_key(k)}: {v} +{t0:.1f}s → +{t1:.1f}s<extra></extra>"))
                shown.add(v)
            i = j + 1
    decorate(fig, view, label_faults=False)
    title = ("DB role per member" if all(ROLE_KEY.search(k) for k in keys) else
             "States — " + ", ".join(pretty_key(k) for k in keys[:4]) + ("…" if len(keys) > 4 else ""))
    fig.update_layout(**_layout(view, title, "", height=max(160, 70 + 34 * len(keys)),
                                barmode="overlay", hovermode="closest"))
    return fig


def other_server_charts(view: RunView) -> list[tuple[str, go.Figure]]:
    out = []
    for name, pts in view.server.items():
        low = name.lower()
        if low == "availability" or re.match(r"p\d+_seconds$", low) or ("error" in low and "ratio" in low):
            continue
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=[round(view.rel(t), 2) for t, _ in pts], y=[v for _, v in pts], name=pretty_key(name),
                                 mode="lines", line=dict(color=PALETTE[0], width=1.8)))
        decorate(fig, view)
        fig.update_layout(**_layout(view, f"{pretty_key(name).capitalize()} (Prometheus)", "", height=200))
        out.append((name, fig))
    return out


# -- alerts -------------------------------------------------------------------------------------


def alert_timeline(view: RunView) -> go.Figure | None:
    """One lane per alert: pending/firing spans, resolved and notification markers."""
    lanes: dict[str, list[tuple[float, str, str]]] = {}
    for e in view.alert_events():
        name = str(e.get("alert") or e.get("name") or e.get("alertname") or "alert")
        kind = str(e.get("kind"))
        state = str(e.get("state") or e.get("status") or ("notification" if kind.startswith("notification") else "firing")).lower()
        if kind.startswith("notification"):
            state = "notification"
        text = str(e.get("text") or "")
        if e.get("receiver"):
            text += f" → {e.get('receiver')}"
        lanes.setdefault(name, []).append((view.rel(e["t"]), state, text))
    from_events = {(n, s, round(t, 1)) for n, items in lanes.items() for t, s, _ in items}
    starts = [w.start for w in view.fault_windows()]
    inj = min(starts) if starts else None
    for c in view.alert_checks():
        m = c.get("measured") if isinstance(c.get("measured"), dict) else {}
        name = str(m.get("alert") or c.get("kind"))
        for k, v in m.items():
            t = num(v)
            k = str(k)
            after = re.match(r"(.+)_after_(s|seconds)$", k)
            if after and t is not None and inj is not None and not k.startswith("starts_at"):
                state = {"fired": "firing", "firing": "firing", "pending": "pending", "resolved": "resolved",
                         "notified": "notification"}.get(after.group(1), after.group(1))
                if (name, state, round(inj + t, 1)) not in from_events:
                    lanes.setdefault(name, []).append((inj + t, state, f"{c.get('kind')}: {pretty_key(after.group(1))} "
                                                                       f"{fmt_duration(t)} after the injection"))
                continue
            if str(k).endswith("_at") and t is not None and t > 1e9:
                state = next((s for s in ("pending", "firing", "resolved") if s in k), "notification" if "notif" in k else k[:-3])
                if (name, state, round(view.rel(t), 1)) in from_events:
                    continue  # the same moment, already an event
                lanes.setdefault(name, []).append((view.rel(t), state, f"{c.get('kind')}: {pretty_key(k)}"))
    if not lanes:
        return None
    fig = go.Figure()
    end = view.x_range[1]
    legend: set[str] = set()
    for name, items in lanes.items():
        items.sort(key=lambda i: i[0])
        # spans: pending/firing last until the next state change of that alert
        states = [(t, s, txt) for t, s, txt in items if s in ("pending", "firing", "resolved")]
        for i, (t, s, txt) in enumerate(states):
            if s == "resolved":
                continue
            t1 = states[i + 1][0] if i + 1 < len(states) else end
            fig.add_trace(go.Bar(y=[name], x=[max(t1 - t, 0.05)], base=[t], orientation="h", name=s, legendgroup=s,
                                 showlegend=s not in legend, width=0.5,
                                 marker=dict(color=ALERT_COLOURS.get(s, "#8c959f"), line=dict(width=0)),
                                 hovertemplate=f"{name} {s} from +{t:.1f}s<extra>{_wrap(txt)}</extra>"))
            legend.add(s)
        for t, s, txt in items:
            if s in ("pending", "firing"):
                continue
            fig.add_trace(go.Scatter(x=[t], y=[name], mode="markers", name=s, legendgroup=s, showlegend=s not in legend,
                                     marker=dict(size=12, color=ALERT_COLOURS.get(s, "#57606a"),
                                                 symbol="diamond" if s == "notification" else "circle",
                                                 line=dict(color="white", width=1)),
                                     hovertext=[_wrap(f"{name} {s} +{t:.1f}s {txt}")], hoverinfo="text"))
            legend.add(s)
    decorate(fig, view)
    fig.update_layout(**_layout(view, "Alerts — pending / firing / resolved, notifications", "",
                                height=max(170, 90 + 40 * len(lanes)), barmode="overlay", hovermode="closest"))
    return fig


