"""Reports of a run: ``report.html`` (one self-contained file), ``summary.md`` (for CI
job summaries) and the ``index.html`` of the reports folder (history across runs).

Charting library: **plotly** (the Python package, which bundles plotly.js). Why:

* offline: ``plotly.offline.get_plotlyjs()`` gives the whole plotly.js (~4.8 MB) as a
  string that goes inline into the page, so ``report.html`` is one file that opens from a
  CI artefact, a mail attachment or an air-gapped laptop with no network and no CDN;
* interactive where it matters here: hover for exact values, zoom into the seconds
  around an injection (all charts of a report follow the same zoom), shaded shapes for
  fault windows and lines for abort/recovery moments are first-class layout objects;
* SVG rendering for scatter/bar traces, so a headless browser without a GPU draws them
  and a test can assert on the drawn DOM;
* already a dependency of the harness (pyproject), pure Python to build the figures,
  no Node toolchain.

Alternatives rejected: matplotlib (static images, no hover/zoom, and a second plotting
stack), Chart.js/ECharts/Vega (we would have to vendor and update the JS ourselves),
Bokeh (its "inline" resources also work offline but it is not installed and adds a server-
oriented stack).

The page never raises for a missing or unexpected field: every part is built from
:class:`harness.report.view.RunView` (tolerant accessors), and a part that still fails
renders a one-line note instead of stopping the report.
"""
from __future__ import annotations

import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.report.view import RunView

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
SUMMARY_NAME = "summary.md"
INDEX_NAME = "index.html"


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # a literal "</script>" inside the bundle would end the inline <script> element
    return get_plotlyjs().replace("</script>", "<\\/script>")


def _write(path: Path, text: str) -> None:
    """Write atomically, so a reader (or a concurrent index rebuild) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def render_report(journal: dict[str, Any], run_dir_name: str | None = None) -> str:
    from harness.report.page import report_html

    if isinstance(journal, dict) and journal.get("kind") == "drill":
        from harness.report.drill import drill_report_html

        return drill_report_html(journal, plotly_js())

    return report_html(RunView(journal, run_dir_name), plotly_js())


def render_summary(journal: dict[str, Any], run_dir_name: str | None = None) -> str:
    from harness.report.markdown import summary_md

    if isinstance(journal, dict) and journal.get("kind") == "drill":
        from harness.report.drill import drill_summary_md

        return drill_summary_md(journal)

    return summary_md(RunView(journal, run_dir_name), REPORT_NAME)


def write_index(reports_dir: str | Path) -> Path:
    """(Re)build ``reports_dir/index.html`` from every ``*/journal.json`` below it."""
    from harness.report.index import index_html

    reports_dir = Path(reports_dir)
    path = reports_dir / INDEX_NAME
    _write(path, index_html(reports_dir, plotly_js()))
    return path


def write_reports(journal: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/summary.md``, then rebuild the index of
    ``out_dir``'s parent. Returns the path of the HTML report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / REPORT_NAME
    _write(html_path, render_report(journal, out_dir.name))
    try:
        _write(out_dir / SUMMARY_NAME, render_summary(journal, out_dir.name))
    except Exception as exc:  # noqa: BLE001 - the HTML report is written; say what is missing
        log.warning("could not write %s: %s", out_dir / SUMMARY_NAME, exc)
    try:
        write_index(out_dir.parent)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not rebuild %s: %s", out_dir.parent / INDEX_NAME, exc)
    return html_path


__all__ = ["write_reports", "write_index", "render_report", "render_summary", "plotly_js"]
