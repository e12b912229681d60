"""The weekly report: an A4 PDF and PNGs drawn with matplotlib from plain data.  No database access.

Pages: a summary (per theatre: the week's stories by label with the change
from last week, the escalation index with a 90-day sparkline, a status word
from the detectors, and the week's alerts as sentences); one page per active
theatre (90 days of daily stories stacked by label, the model's expected
level and upper band, alert markers, running tallies, top stories with
clickable links, retaliation chains); and an appendix (feed health, model
card, method, how to read the charts).

Headlines are untrusted: every text is drawn with mathtext off, control
characters stripped, long titles cut on a word, and glyphs outside the
chosen fonts fall back cleanly.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from monitor.report_data import (
    LABELS,
    NAMES,
    ReportData,
    TheatreData,
    alert_sentence,
    clean,
)

COLOURS = {"attack": "#D55E00", "retaliation": "#CC79A7", "de-escalation": "#009E73", "other": "#BBBBBB"}
STATUS_COLOURS = {"escalating": "#D55E00", "steady": "#555555", "de-escalating": "#009E73", "no data": "#999999"}
A4 = (8.27, 11.69)
FALLBACK_FONTS = (
    "DejaVu Sans",
    "WenQuanYi Micro Hei",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Droid Sans Fallback",
)


@contextmanager
def drawing() -> Iterator[Any]:
    """matplotlib with a headless backend, mathtext off, fallback fonts, and glyph warnings silenced."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [f for f in FALLBACK_FONTS if f in installed] or ["DejaVu Sans"]
    style: dict[str, Any] = {
        "text.parse_math": False,
        "font.family": fonts,
        "font.size": 8.5,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "axes.titlesize": 10,
        "pdf.fonttype": 42,
    }
    with plt.rc_context(style), warnings.catch_warnings():  # type: ignore[arg-type]
        warnings.simplefilter("ignore", UserWarning)
        yield plt


def _footer(fig: Any, data: ReportData, page: int, pages: int) -> None:
    text = (
        f"Escalation Monitor {data.version} · config {clean(data.config_name, 40)} · "
        f"generated {data.generated:%Y-%m-%d %H:%M} UTC · page {page} of {pages}"
    )
    fig.text(0.5, 0.015, text, ha="center", fontsize=7, color="#666666")


def _header(fig: Any, data: ReportData, subtitle: str) -> None:
    fig.text(0.06, 0.965, f"Escalation Monitor: week {data.tag}", fontsize=15, weight="bold")
    fig.text(
        0.06, 0.945, f"{data.start:%a %d %b %Y} to {data.end:%a %d %b %Y} · {subtitle}", fontsize=9, color="#444444"
    )


def _arrow(now: int, before: int) -> str:
    if now == before:
        return f"{now} (=)"
    return f"{now} ({'▲' if now > before else '▼'}{abs(now - before)})"


def _summary_rows(data: ReportData) -> list[list[str]]:
    return [
        [clean(t.name, 38)]
        + [_arrow(t.week_counts.get(lb, 0), t.last_week_counts.get(lb, 0)) for lb in LABELS[:3]]
        + [f"{t.index[-7:] and sum(t.index[-7:]) / 7:.1f}", t.status]
        for t in data.theatres
    ]


def draw_summary(plt: Any, data: ReportData, height: float = A4[1]) -> Any:
    """The summary page; also the stand-alone PNG."""
    fig = plt.figure(figsize=(A4[0], height))
    _header(fig, data, "summary")
    if data.empty:
        fig.text(0.06, 0.9, "No stories were stored for this week: no data to report.", fontsize=11)
    table_ax = fig.add_axes((0.06, 0.62, 0.88, 0.29))
    table_ax.axis("off")
    rows = _summary_rows(data)
    header = ["theatre", "attacks", "retaliation", "de-escalation", "index (7d)", "status"]
    if rows:
        table = table_ax.table(
            cellText=rows,
            colLabels=header,
            loc="upper left",
            cellLoc="left",
            colWidths=[0.36, 0.12, 0.12, 0.14, 0.11, 0.15],
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        for (row, col), cell in table.get_celld().items():
            cell.set_edgecolor("#DDDDDD")
            if row and col == 5:
                cell.get_text().set_color(STATUS_COLOURS.get(rows[row - 1][5], "#333333"))
    _sparklines(fig, data)
    _alert_list(fig, data)
    return fig


def _sparklines(fig: Any, data: ReportData) -> None:
    shown = [t for t in data.theatres if t.index][:8]
    for n, theatre in enumerate(shown):
        ax = fig.add_axes((0.06 + (n % 4) * 0.23, 0.50 - (n // 4) * 0.1, 0.2, 0.06))
        ax.plot(range(len(theatre.index)), theatre.index, color="#333333", linewidth=0.8)
        ax.axhline(0, color="#BBBBBB", linewidth=0.5)
        ax.set_xticks([])
        ax.tick_params(labelsize=6)
        ax.set_title(clean(theatre.name, 34), fontsize=7, loc="left", fontweight="normal")
    if shown:
        fig.text(0.06, 0.585, "Escalation index, last 90 days", fontsize=9, weight="bold")


def _alert_list(fig: Any, data: ReportData) -> None:
    names = {t.id: t.name for t in data.theatres}
    this_week = [
        alert_sentence(a, clean(names.get(a.theatre, "all theatres"), 40)) for t in data.theatres for a in t.alerts
    ]
    earlier = [
        alert_sentence(a, clean(names.get(a.theatre, "all theatres"), 40)) for t in data.theatres for a in t.recent
    ]
    y = _sentences(fig, "This week's alerts", this_week, "No alerts this week.", 0.3, 9)
    _sentences(fig, "Alerts of the three weeks before", earlier, "None.", y - 0.01, 6)


def _sentences(fig: Any, heading: str, lines: list[str], empty: str, top: float, most: int) -> float:
    fig.text(0.06, top, heading, fontsize=10, weight="bold")
    y = top - 0.02
    if not lines:
        fig.text(0.07, y, empty, fontsize=8.5, va="top")
        return y - 0.02
    for line in lines[:most]:
        for part in textwrap.wrap(line, 110):
            fig.text(0.07, y, part, fontsize=8, va="top")
            y -= 0.016
    if len(lines) > most:
        fig.text(0.07, y, f"… and {len(lines) - most} more (see the theatre pages)", fontsize=8, va="top")
        y -= 0.016
    return y


def _stacked(ax: Any, theatre: TheatreData) -> None:
    import matplotlib.dates as mdates
    from matplotlib.ticker import MaxNLocator

    bottom = [0] * len(theatre.days)
    for label in LABELS[:3]:
        values = theatre.stories.get(label, (0,) * len(theatre.days))
        ax.bar(theatre.days, values, bottom=bottom, color=COLOURS[label], width=0.9, label=NAMES[label])
        bottom = [b + v for b, v in zip(bottom, values)]
    days = [d for d in theatre.days if d in theatre.expected]
    if days:
        ax.fill_between(
            days,
            0,
            [theatre.upper[d] for d in days],
            color="#000000",
            alpha=0.07,
            step="mid",
            label="attacks: upper band",
        )
        ax.plot(
            days,
            [theatre.expected[d] for d in days],
            color="#000000",
            linestyle="--",
            linewidth=0.9,
            label="attacks: expected",
        )
    for alert in theatre.alerts:
        ax.annotate(
            "▼",
            (alert.day, max(bottom) * 1.02 + 0.5),
            ha="center",
            color=COLOURS.get(alert.label, "black"),
            fontsize=9,
            annotation_clip=False,
        )
    ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=0, interval=2))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("stories per day")
    ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=3)
    if theatre.tallies:
        twin = ax.twinx()
        twin.plot(
            [d for d, _ in theatre.tallies], [n for _, n in theatre.tallies], color="#0072B2", marker=".", linewidth=0.8
        )
        twin.set_ylabel("running tally (reported)", color="#0072B2")
        twin.yaxis.set_major_locator(MaxNLocator(integer=True))


def _story_block(fig: Any, theatre: TheatreData, top: float) -> float:
    y = top
    for label in LABELS[:3]:
        stories = theatre.top.get(label, ())
        fig.text(0.06, y, f"Top {NAMES[label].lower()} stories", fontsize=9, weight="bold", color=COLOURS[label])
        y -= 0.018
        if not stories:
            fig.text(0.07, y, "none this week", fontsize=8, color="#777777")
            y -= 0.018
        for story in stories[:4]:
            meta = f"{story.day:%a %d %b} · {clean(story.outlet, 24)} · {story.confidence:.0%}"
            meta += f" · {story.mentions} mention(s)"
            fig.text(
                0.07,
                y,
                clean(story.title, 105),
                fontsize=8,
                url=story.link or None,
                color="#1F3F7F" if story.link else "black",
            )
            fig.text(0.07, y - 0.013, meta, fontsize=6.5, color="#666666")
            y -= 0.03
        y -= 0.006
    return y


def _chain_block(fig: Any, theatre: TheatreData, top: float) -> None:
    fig.text(0.06, top, "Retaliation chains this week", fontsize=9, weight="bold")
    y = top - 0.018
    if not theatre.chains:
        fig.text(0.07, y, "none this week", fontsize=8, color="#777777")
    for chain in theatre.chains[:5]:
        fig.text(0.07, y, f"{chain.day:%d %b}  {clean(chain.retaliation, 60)}", fontsize=7.5)
        fig.text(
            0.09,
            y - 0.013,
            f"answers ({chain.lag_hours:g} h earlier): {clean(chain.attack, 80)}",
            fontsize=7,
            color="#555555",
        )
        y -= 0.03


def draw_theatre(plt: Any, data: ReportData, theatre: TheatreData, height: float = A4[1]) -> Any:
    fig = plt.figure(figsize=(A4[0], height))
    _header(fig, data, clean(theatre.name, 80))
    status = f"status: {theatre.status}"
    fig.text(0.94, 0.945, status, ha="right", fontsize=9, color=STATUS_COLOURS.get(theatre.status, "#333333"))
    ax = fig.add_axes((0.08, 0.66, 0.82, 0.25))
    _stacked(ax, theatre)
    ax.set_title(f"Stories per day, last {len(theatre.days)} days", loc="left")
    y = _story_block(fig, theatre, 0.6)
    _chain_block(fig, theatre, min(y, 0.2))
    return fig


APPENDIX = [
    "How counts are made: every feed item is labelled attack, retaliation, de-escalation or other by the classifier "
    "(see the model card). Items reporting the same event (same label, a theatre in common, within 48 hours, similar "
    "wording and no conflicting names) form one story; charts count stories, and mentions are the items behind them. "
    'Running tallies ("150 attacks since October") are recorded separately and never counted as attacks.',
    "How alerts are made: for each theatre and label, a negative-binomial regression on the trailing year (trend, "
    "day of week, the day's total ingest as exposure, two guard days) gives the expected count. A spike is a day "
    "above its predictive 99.95% bound; a shift is a sustained rise caught by a CUSUM calibrated to about one false "
    "alarm in two years; a trend is a significant four-week ramp. Days with a feed outage are not scored.",
    "How to read the charts: bars are stories per day stacked by label; the dashed line is the expected number of "
    "attack stories and the grey band its upper bound; triangles mark alerts; the blue line, where present, is the "
    "running tally of attacks that outlets reported. The escalation index is (attacks + 1.5 x retaliations - "
    "de-escalations) per 100 items ingested that day.",
]


def draw_appendix(plt: Any, data: ReportData) -> Any:
    fig = plt.figure(figsize=A4)
    _header(fig, data, "appendix")
    fig.text(0.06, 0.91, "Feed health this week", fontsize=10, weight="bold")
    ax = fig.add_axes((0.06, 0.6, 0.88, 0.29))
    ax.axis("off")
    rows = [
        [
            clean(f.feed, 30),
            str(f.items),
            f.last_success.strftime("%Y-%m-%d %H:%M") if f.last_success else "never",
            str(f.errors),
            clean(f.last_error, 40),
        ]
        for f in data.feeds[:18]
    ]
    if rows:
        table = ax.table(
            cellText=rows,
            colLabels=["feed", "items", "last success", "errors", "last error"],
            loc="upper left",
            cellLoc="left",
            colWidths=[0.26, 0.08, 0.2, 0.08, 0.38],
        )
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
    else:
        ax.text(0, 1, "No feeds polled this week (imported archives only).", va="top", fontsize=8.5)
    y = 0.57
    fig.text(0.06, y, "Classifier", fontsize=10, weight="bold")
    for part in textwrap.wrap(clean(data.model), 115):
        y -= 0.017
        fig.text(0.06, y, part, fontsize=8)
    for paragraph in APPENDIX:
        y -= 0.03
        for part in textwrap.wrap(paragraph, 115):
            fig.text(0.06, y, part, fontsize=8)
            y -= 0.016
    return fig


def render(data: ReportData, out_dir: Path) -> list[Path]:
    """Write ``<week>.pdf``, ``<week>-summary.png`` and one PNG per active theatre; refresh ``latest.*``.

    Returns the paths written, the PDF last.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    out_dir.mkdir(parents=True, exist_ok=True)
    active = [t for t in data.theatres if t.active]
    pdf_path = out_dir / f"{data.tag}.pdf"
    written = []
    with drawing() as plt:
        pages = 2 + len(active)
        tmp = pdf_path.with_suffix(".pdf.tmp")
        with PdfPages(
            tmp, metadata={"Title": f"Escalation Monitor {data.tag}", "Creator": "Escalation Monitor"}
        ) as pdf:
            for number, fig in enumerate(_pages(plt, data, active), start=1):
                _footer(fig, data, number, pages)
                pdf.savefig(fig)
                plt.close(fig)
        tmp.replace(pdf_path)
        written.append(
            _png(plt, draw_summary(plt, data, height=A4[1] * 0.72), data, out_dir / f"{data.tag}-summary.png", 150)
        )
        for theatre in active:
            name = re.sub(r"[^a-z0-9-]", "-", (theatre.id or "all").lower())
            written.append(_png(plt, draw_theatre(plt, data, theatre), data, out_dir / f"{data.tag}-{name}.png"))
    _latest(out_dir, pdf_path, written[0])
    return [*written, pdf_path]


def _pages(plt: Any, data: ReportData, active: Sequence[TheatreData]) -> Iterator[Any]:
    yield draw_summary(plt, data)
    for theatre in active:
        yield draw_theatre(plt, data, theatre)
    yield draw_appendix(plt, data)


def _png(plt: Any, fig: Any, data: ReportData, path: Path, dpi: int = 110) -> Path:
    _footer(fig, data, 1, 1)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _latest(out_dir: Path, pdf: Path, png: Path) -> None:
    import shutil

    for source, name in ((pdf, "latest.pdf"), (png, "latest.png")):
        tmp = out_dir / f".{name}.tmp"
        shutil.copyfile(source, tmp)
        tmp.replace(out_dir / name)


def week_bounds(year: int, week: int) -> tuple[date, date]:
    start = date.fromisocalendar(year, week, 1)
    return start, start + timedelta(days=6)
