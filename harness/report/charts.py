"""Plotly figures of one run. Every time chart shares the x axis (seconds from the
run's start), shades the fault windows and marks the abort / recovery moments.

Traces are ``go.Scatter``/``go.Bar`` (drawn as SVG, not WebGL), so a headless browser
without a GPU draws them and a test can find them in the DOM. Every fault-window shape
is named ``fault-window: <description>``; abort and recovery lines ``moment: <kind>``.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import plotly.graph_objects as go

from harness.report.view import RunView, fmt_duration, num, pretty_key

FAULT_FILL = "rgba(207, 34, 46, 0.10)"
FAULT_TEXT = "#a40e26"
MOMENT_COLOURS = {"abort": "#cf222e", "breach": "#cf222e", "recovered": "#1a7f37", "not-recovered": "#cf222e"}
PHASE_COLOURS = {
    "warm-up": "#d0d7de", "steady-state": "#8ec5ff", "method": "#ffb3b8", "recovery": "#a6e3b5",
    "verification": "#e0d4ff", "rollbacks": "#ffd8a8",
}
PALETTE = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a", "#0550ae", "#953800"]
CONFIG = {"displaylogo": False, "responsive": True,
          "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]}

ALERT_COLOURS = {"pending": "#d4a72c", "firing": "#cf222e", "resolved": "#1a7f37", "notification": "#8250df"}


def _wrap(text: str, width: int = 80) -> str:
    words, lines, cur = str(text).split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width and cur:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return "<br>".join(lines)


def _layout(view: RunView, title: str, ytitle: str, height: int = 230, **kw: Any) -> dict:
    layout = dict(
        title=dict(text=f"<b>{title}</b>", x=0.0, xanchor="left", y=0.97, yanchor="top", font=dict(size=14)),
        height=height,
        margin=dict(l=72, r=56, t=40, b=40),
        xaxis=dict(title=dict(text="seconds from run start", font=dict(size=11)), range=view.x_range,
                   showgrid=True, gridcolor="#eef0f2", zeroline=False, ticksuffix="s"),
        yaxis=dict(title=dict(text=ytitle, font=dict(size=11)), gridcolor="#eef0f2", zeroline=False),
        legend=dict(orientation="h", x=1.0, xanchor="right", y=1.0, yanchor="bottom", font=dict(size=11),
                    bgcolor="rgba(255,255,255,0)"),
        plot_bgcolor="white", paper_bgcolor="white",
        hovermode="x unified",
        font=dict(family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=12, color="#1f2328"),
    )
    layout.update(kw)
    return layout


def decorate(fig: go.Figure, view: RunView, label_faults: bool = True) -> go.Figure:
    """Shade the fault windows; draw the abort and recovery moments."""
    for w in view.fault_windows():
        fig.add_shape(type="rect", xref="x", yref="paper", x0=w.start, x1=w.end, y0=0, y1=1,
                      fillcolor=FAULT_FILL, line=dict(width=0), layer="below", name=f"fault-window: {w.label}")
        if label_faults:
            fig.add_annotation(x=w.start, y=1, xref="x", yref="paper", xanchor="left", yanchor="top",
                               text=f"⚡ {w.label}" + ("" if w.reverted else " (not reverted)"),
                               showarrow=False, font=dict(size=10, color=FAULT_TEXT),
                               bgcolor="rgba(255,255,255,0.6)")
    for m in view.moments():
        colour = MOMENT_COLOURS.get(m.kind, "#57606a")
        dash = "dot" if m.kind == "breach" else "dash"
        fig.add_shape(type="line", xref="x", yref="paper", x0=m.at, x1=m.at, y0=0, y1=1,
                      line=dict(color=colour, width=2, dash=dash), layer="above", name=f"moment: {m.kind}")
        if m.kind != "breach":
            right = m.at > view.x_range[0] + 0.75 * (view.x_range[1] - view.x_range[0])
            fig.add_annotation(x=m.at, y=0.02, xref="x", yref="paper", xanchor="right" if right else "left",
                               yanchor="bottom",
                               text=m.label, showarrow=False, font=dict(size=10, color=colour),
                               bgcolor="rgba(255,255,255,0.75)")
    return fig


def _xs(view: RunView, rows: list[dict]) -> list[float]:
    return [round(view.rel(r["t"]), 2) for r in rows]


def _col(rows: list[dict], key: str, scale: float = 1.0) -> list[float | None]:
    out = []
    for r in rows:
        v = num(r.get(key))
        out.append(None if v is None else v * scale)
    return out


def _has(values: list) -> bool:
    return any(v is not None for v in values)


def _hline(fig: go.Figure, y: float, text: str, colour: str = "#57606a") -> None:
    fig.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=y, y1=y,
                  line=dict(color=colour, width=1.5, dash="dash"), layer="above", name=f"objective: {text}")
    fig.add_annotation(x=1, y=y, xref="paper", yref="y", xanchor="right", yanchor="bottom", text=text,
                       showarrow=False, font=dict(size=10, color=colour))


# -- the charts ---------------------------------------------------------------------------------
def timeline(view: RunView) -> go.Figure | None:
    """Phases, faults and what happened when, as lanes."""
    phases = view.phases()
    windows = view.fault_windows()
    if not phases and not windows and not view.events:
        return None
    fig = go.Figure()
    lanes = ["phase", "faults", "events"]
    span = max(view.x_range[1] - view.x_range[0], 1.0)
    for name, t0, t1 in phases:
        wide = (t1 - t0) / span > 0.07
        fig.add_trace(go.Bar(
            y=["phase"], x=[max(t1 - t0, 0.05)], base=[t0], orientation="h", name=name, showlegend=False,
            marker=dict(color=PHASE_COLOURS.get(name, "#d0d7de"), line=dict(color="white", width=1)),
            text=[name], textposition="inside" if wide else "none", insidetextanchor="middle",
            textfont=dict(size=11, color="#1f2328"),
            hovertemplate=f"{name}: +{t0:.1f}s → +{t1:.1f}s<extra></extra>", width=0.6))
    for w in windows:
        fig.add_trace(go.Bar(
            y=["faults"], x=[max(w.end - w.start, 0.05)], base=[w.start], orientation="h", showlegend=False,
            marker=dict(color="#cf222e", line=dict(width=0)), text=[w.label], textposition="inside",
            insidetextanchor="middle", textfont=dict(size=11, color="white"), width=0.6,
            hovertemplate=f"{w.label}: injected +{w.start:.1f}s, "
                          + (f"reverted +{w.end:.1f}s" if w.reverted else "not reverted") + "<extra></extra>"))
    pts: dict[str, list] = {}

    def point(group: str, t: float | None, text: str, short: str = "") -> None:
        if t is not None:
            pts.setdefault(group, []).append((t, text, short))

    for e in view.events:
        k = str(e.get("kind") or "")
        t = view.rel(e.get("t"))
        text = f"{k}: {e.get('text') or ''}"
        if k in ("phase", "load", "inject", "revert"):
            continue
        if k == "slo":
            continue
        short = str(e.get("check") or e.get("alert") or k)
        if k.startswith(("alert", "notification")):
            continue  # their own lane, below
        if k == "check" or k == "recovered":
            point("ok" if e.get("passed", True) else "bad", t, text, short)
        elif k in ("abort", "not-recovered", "error", "interrupted"):
            point("bad", t, text, "" if k == "abort" else short)
        else:
            point("info", t, text, short)
    styles = {"ok": ("#1a7f37", "circle", "passed / happened"), "bad": ("#cf222e", "x", "failed / abort"),
              "info": ("#57606a", "diamond", "other")}
    for group, items in pts.items():
        colour, symbol, name = styles[group]
        fig.add_trace(go.Scatter(
            x=[t for t, _, _ in items], y=["events"] * len(items), mode="markers+text" if group == "bad" else "markers",
            name=name, showlegend=False, text=[f"✘ {sh}" if sh else "" for _, _, sh in items] if group == "bad" else None,
            textposition="top center", textfont=dict(size=10, color=colour),
            marker=dict(color=colour, symbol=symbol, size=11, line=dict(color="white", width=1)),
            hovertext=[_wrap(s) for _, s, _ in items], hoverinfo="text+x"))
    alerts = view.alert_events()
    if alerts:
        lanes.insert(2, "alerts")
        for state in ("pending", "firing", "resolved", "notification"):
            items = []
            for e in alerts:
                k = str(e.get("kind"))
                st = "notification" if k.startswith("notification") else str(e.get("state") or e.get("status") or "firing").lower()
                if st == state:
                    items.append(e)
            if not items:
                continue
            colour = ALERT_COLOURS.get(state, "#57606a")
            fig.add_trace(go.Scatter(
                x=[view.rel(e["t"]) for e in items], y=["alerts"] * len(items), mode="markers+text", name=state,
                showlegend=False, text=[state if state != "notification" else "notified" for _ in items],
                textposition="top center", textfont=dict(size=10, color=colour),
                marker=dict(color=colour, symbol="diamond" if state == "notification" else "circle", size=11,
                            line=dict(color="white", width=1)),
                hovertext=[_wrap(f"{e.get('alert') or ''} {state}: {e.get('text') or ''}"
                                 + (f" → {e.get('receiver')}" if e.get("receiver") else "")) for e in items],
                hoverinfo="text+x"))
    # every lane on the axis, even an empty one (nothing injected says something too)
    fig.add_trace(go.Scatter(x=[view.x_range[0]] * len(lanes), y=lanes, mode="markers", showlegend=False,
                             marker=dict(opacity=0, size=1), hoverinfo="skip", name="lanes"))
    decorate(fig, view, label_faults=False)
    fig.update_layout(**_layout(view, "", "", height=190 + (40 if alerts else 0), barmode="overlay",
                                hovermode="closest", showlegend=False))
    fig.update_layout(title=None, margin=dict(l=72, r=56, t=12, b=40))
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(lanes)), title=None,
                     showgrid=False, fixedrange=True)
    return fig


def availability(view: RunView) -> go.Figure | None:
    rows = view.client
    x = _xs(view, rows)
    av = _col(rows, "availability", 100)
    server = view.server.get("availability")
    if not _has(av) and not server:
        return None
    fig = go.Figure()
    if _has(av):
        fig.add_trace(go.Scatter(x=x, y=av, name="users (Locust)", mode="lines+markers", line=dict(color=PALETTE[0], width=2),
                                 marker=dict(size=4), hovertemplate="%{y:.2f}%"))
    if server:
        fig.add_trace(go.Scatter(x=[round(view.rel(t), 2) for t, _ in server],
                                 y=[None if v is None else v * 100 for _, v in server], name="server (Prometheus)",
                                 mode="lines", line=dict(color=PALETTE[1], width=1.5, dash="dot"),
                                 hovertemplate="%{y:.2f}%"))
    vals = [v for v in av if v is not None] + [v * 100 for _, v in (server or []) if v is not None]
    obj = view.availability_objective()
    lo = min(vals + ([obj * 100] if obj else [])) if vals else 0
    span = max(100 - lo, 0.5)
    if obj is not None:
        _hline(fig, obj * 100, f"objective ≥ {obj * 100:g}%")
    decorate(fig, view)
    fig.update_layout(**_layout(view, "Availability — share of requests that succeeded", "%"))
    fig.update_yaxes(range=[max(0, lo - span * 0.15), 100 + span * 0.1], ticksuffix="%")
    return fig


def errors(view: RunView) -> go.Figure | None:
    rows = view.client
    x = _xs(view, rows)
    err, tos = [], []
    for r in rows:
        n = num(r.get("rps"))
        e, t = num(r.get("errors")), num(r.get("timeouts"))
        err.append(None if not n else (e or 0) / n * 100)
        tos.append(None if not n else (t or 0) / n * 100)
    server = {k: v for k, v in view.server.items() if "error" in k.lower() and "ratio" in k.lower()}
    if not _has(err) and not server:
        return None
    fig = go.Figure()
    if _has(err):
        fig.add_trace(go.Scatter(x=x, y=err, name="error ratio (users)", mode="lines+markers",
                                 line=dict(color="#cf222e", width=2), marker=dict(size=4), hovertemplate="%{y:.2f}%"))
        if any(v for v in tos if v):
            fig.add_trace(go.Scatter(x=x, y=tos, name="timeout ratio (users)", mode="lines",
                                     line=dict(color="#bc4c00", width=1.5), hovertemplate="%{y:.2f}%"))
    for i, (name, pts) in enumerate(server.items()):
        fig.add_trace(go.Scatter(x=[round(view.rel(t), 2) for t, _ in pts], y=[None if v is None else v * 100 for _, v in pts],
                                 name=f"{pretty_key(name)} (Prometheus)", mode="lines",
                                 line=dict(color=PALETTE[(i + 4) % len(PALETTE)], width=1.5, dash="dot"),
                                 hovertemplate="%{y:.2f}%"))
    obj = view.availability_objective()
    if obj is not None:
        _hline(fig, (1 - obj) * 100, f"budget line {(1 - obj) * 100:g}%")
    decorate(fig, view)
    fig.update_layout(**_layout(view, "Error ratio — share of requests that failed", "%"))
    fig.update_yaxes(rangemode="tozero", ticksuffix="%")
    top = max([v for v in err + tos if v is not None] + [v * 100 for pts in server.values() for _, v in pts if v is not None]
              + [(1 - obj) * 100 if obj else 0] + [1])
    fig.update_yaxes(range=[0, top * 1.15])
    return fig


def latency(view: RunView) -> go.Figure | None:
    rows = view.client
    x = _xs(view, rows)
    fig = go.Figure()
    drawn = False
    for key, colour, width in (("p50_ms", "#8c959f", 1.5), ("p95_ms", PALETTE[0], 1.5), ("p99_ms", "#8250df", 2.2)):
        ys = _col(rows, key)
        if _has(ys):
            drawn = True
            fig.add_trace(go.Scatter(x=x, y=ys, name=f"{key[:3]} (users)", mode="lines",
                                     line=dict(color=colour, width=width), hovertemplate="%{y:.1f} ms"))
    for name, pts in view.server.items():
        m = re.match(r"(p\d+)_seconds$", name)
        if m:
            drawn = True
            fig.add_trace(go.Scatter(x=[round(view.rel(t), 2) for t, _ in pts],
                                     y=[None if v is None else v * 1000 for _, v in pts],
                                     name=f"{m.group(1)} (Prometheus)", mode="lines",
                                     line=dict(color=PALETTE[1], width=1.5, dash="dot"), hovertemplate="%{y:.1f} ms"))
    if not drawn:
        return None
    for q, secs in view.latency_objectives().items():
        _hline(fig, secs * 1000, f"{q} objective < {fmt_duration(secs)}")
    decorate(fig, view)
    fig.update_layout(**_layout(view, "Latency — p50 / p95 / p99 (log scale)", ""))
    ticks = [m * 10 ** e for e in range(-1, 6) for m in (1, 2, 5)]
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[_ms_label(t) for t in ticks])
    return fig


def _ms_label(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def throughput(view: RunView) -> go.Figure | None:
    rows = view.client
    if not rows or not _has(_col(rows, "rps")):
        return None
    x = _xs(view, rows)
    ok, failed, tos = [], [], []
    for r in rows:
        n = num(r.get("rps")) or 0
        e = num(r.get("errors")) or 0
        t = num(r.get("timeouts")) or 0
        ok.append(max(0, n - e))
        failed.append(max(0, e - t))
        tos.append(t)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=ok, name="succeeded", marker=dict(color="#8cb4e6", line=dict(width=0)),
                         hovertemplate="%{y} ok", offset=-1, width=0.9))
    if any(failed):
        fig.add_trace(go.Bar(x=x, y=failed, name="failed", marker=dict(color="#cf222e", line=dict(width=0)),
                             hovertemplate="%{y} failed", offset=-1, width=0.9))
    if any(tos):
        fig.add_trace(go.Bar(x=x, y=tos, name="timed out", marker=dict(color="#bc4c00", line=dict(width=0)),
                             hovertemplate="%{y} timed out", offset=-1, width=0.9))
    users = _col(rows, "users")
    if _has(users):
        fig.add_trace(go.Scatter(x=x, y=users, name="users", yaxis="y2", mode="lines", line=dict(color="#57606a", width=1, dash="dot"),
                                 hovertemplate="%{y} users"))
    decorate(fig, view)
    fig.update_layout(**_layout(view, "Throughput — requests per second", "req/s", barmode="stack", bargap=0.05,
                                yaxis2=dict(overlaying="y", side="right", showgrid=False,
                                            range=[0, max([u for u in users if u is not None] + [1]) * 1.15],
                                            tickformat="d", dtick=_nice_step(max([u for u in users if u is not None] + [1])), title=dict(text="users", font=dict(size=11)))))
    fig.update_layout(margin=dict(l=72, r=56, t=40, b=40))
    return fig


def _nice_step(top: float) -> float:
    """A 1-2-5 step that gives two to five ticks up to ``top``."""
    import math

    mag = 10 ** math.floor(math.log10(max(top, 1)))
    for m in (1, 2, 5, 10):
        if top / (m * mag) <= 5:
            return m * mag
    return 10 * mag


def budget_burn(view: RunView) -> go.Figure | None:
    b = view.budget()
    if b["objective"] is None or not b["requests"]:
        return None
    x, failed, allowed = [], [], []
    cf = ct = 0.0
    for r in view.client:
        ct += num(r.get("rps")) or 0
        cf += num(r.get("errors")) or 0
        x.append(round(view.rel(r["t"]), 2))
        failed.append(cf)
        allowed.append(ct * (1 - b["objective"]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=allowed, name=f"budget: {(1 - b['objective']) * 100:g}% of requests so far",
                             mode="lines", line=dict(color="#1a7f37", width=1.5, dash="dash"), hovertemplate="%{y:.1f} allowed"))
    fig.add_trace(go.Scatter(x=x, y=failed, name="failed requests (cumulative)", mode="lines",
                             line=dict(color="#cf222e", width=2.2), fill="tozeroy", fillcolor="rgba(207,34,46,0.12)",
                             hovertemplate="%{y:.0f} failed"))
    decorate(fig, view)
    fig.update_layout(**_layout(view, "Error budget — failed requests vs. what the availability objective allows",
                                "requests"))
    fig.update_yaxes(rangemode="tozero")
    return fig


# -- whatever the target reported ----------------------------------------------------------------
def all_time_charts(view: RunView) -> list[tuple[str, str, go.Figure]]:
    """(id, section, figure) in page order; a chart with no data is left out."""
    out: list[tuple[str, str, go.Figure]] = []
    builders: list[tuple[str, str, Callable[[RunView], go.Figure | None]]] = [
        ("chart-timeline", "overview", timeline),
        ("chart-availability", "users", availability),
        ("chart-latency", "users", latency),
        ("chart-throughput", "users", throughput),
        ("chart-errors", "users", errors),
        ("chart-budget", "users", budget_burn),
    ]
    for cid, section, build in builders:
        fig = build(view)
        if fig is not None:
            out.append((cid, section, fig))
    from harness.report.charts_system import other_server_charts, target_charts

    for name, fig in target_charts(view):
        out.append((f"chart-target-{_slug(name)}", "system", fig))
    for name, fig in other_server_charts(view):
        out.append((f"chart-server-{_slug(name)}", "system", fig))
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "x"
