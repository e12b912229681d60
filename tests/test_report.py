"""The weekly report from a fixture database, read back with poppler (pdftotext, pdftoppm)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import both_backends, run_cli
from PIL import Image

from monitor.report import render
from monitor.report_data import LABELS, AlertLine, ChainLine, ReportData, StoryLine, TheatreData, alert_sentence

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")

NASTY = [
    "Costs rose from $5 to $10 as $x^2$ militia fees \\alpha doubled",
    "الجيش يعلن وقف إطلاق النار",
    "\u05e6\u05d4\u0022\u05dc \u05ea\u05e7\u05e3 \u05de\u05d8\u05e8\u05d5\u05ea",
    "Ракетный удар по городу",
    "\u7a7a\u88ad \u5bfc\u5f39 \u6e2f\u53e3",
    "Bell\x07 and\x1b[31m escape " + "very long headline words " * 20,
]


def pdf_text(path: Path) -> str:
    """The PDF's text with whitespace folded, so wrapped lines compare as sentences."""
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def page_images(path: Path, folder: Path) -> list[Path]:
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(folder / "page")], check=True)
    return sorted(folder.glob("page-*.png"))


def theatre(theatre_id: str | None, name: str, end: date, busy: bool) -> TheatreData:
    days = tuple(end - timedelta(days=89 - i) for i in range(90))
    rng = np.random.default_rng(len(name))
    stories = {label: tuple(int(v) for v in rng.poisson(2 if busy else 0, 90)) for label in LABELS}
    alerts = (AlertLine(theatre_id, "attack", end - timedelta(days=3), "spike", 9, 1.6, 5, 0.0004),) if busy else ()
    top = (
        {
            "attack": tuple(
                StoryLine(t, "wire", end - timedelta(days=2), 0.91, "https://example.org/a", 3) for t in NASTY
            )
        }
        if busy
        else {}
    )
    return TheatreData(
        theatre_id,
        name,
        days,
        stories,
        {d: 1.5 for d in days},
        {d: 5.0 for d in days},
        tuple(float(i % 5) for i in range(90)),
        {"attack": 9 if busy else 0},
        {"attack": 4},
        "escalating" if busy else "no data",
        alerts,
        (),
        ((end - timedelta(days=10), 140),),
        top,
        (ChainLine("Jets strike depots", "Drone hits base", 26.0, end),) if busy else (),
    )


def report_data(end: date, busy: bool = True) -> ReportData:
    year, week, _ = end.isocalendar()
    theatres = (
        theatre(None, "All theatres", end, busy),
        theatre("iraq-syria", "Iraq and Syria", end, busy),
        theatre("quiet", "A quiet theatre", end, False),
    )
    return ReportData(
        year,
        week,
        end - timedelta(days=6),
        end,
        theatres,
        (),
        "Classifier lr-test",
        datetime.now(UTC),
        "test-config",
        "0.1.0",
    )


def test_rendered_pdf_has_the_pages_texts_and_numbers(tmp_path: Path) -> None:
    paths = render(report_data(date(2024, 1, 28)), tmp_path)
    pdf = paths[-1]
    assert pdf.name == "2024-W04.pdf" and pdf.suffix == ".pdf"
    assert {p.name for p in paths[:-1]} == {"2024-W04-summary.png", "2024-W04-all.png", "2024-W04-iraq-syria.png"}
    assert (tmp_path / "latest.pdf").read_bytes() == pdf.read_bytes() and (tmp_path / "latest.png").exists()
    text = pdf_text(pdf)
    assert "week 2024-W04" in text and "Iraq and Syria" in text and "test-config" in text
    assert "Attacks, Iraq and Syria: 9 stories on Thu 25 Jan against 1.6 expected (bound 5), p < 0.001" in text
    assert "Costs rose from $5 to $10 as $x^2$ militia fees \\alpha" in text
    assert "Ракетный" in text
    assert "\x07" not in text and "\x1b" not in text
    pages = page_images(pdf, tmp_path)
    assert len(pages) == 4  # summary, two active theatres, appendix
    for page in pages:
        with Image.open(page) as image:
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 5, f"{page.name} looks blank"
    assert b"/URI" in pdf.read_bytes()  # story links are clickable


def test_summary_png_is_readable_in_a_chat_message(tmp_path: Path) -> None:
    paths = render(report_data(date(2024, 1, 28)), tmp_path)
    with Image.open(paths[0]) as image:
        assert image.size[0] >= 1200


def test_a_week_without_data_is_still_a_valid_report(tmp_path: Path) -> None:
    pdf = render(report_data(date(2024, 1, 28), busy=False), tmp_path)[-1]
    assert "No stories were stored for this week" in pdf_text(pdf)
    assert len(page_images(pdf, tmp_path)) == 2


def test_alert_sentence() -> None:
    alert = AlertLine("iraq-syria", "attack", date(2023, 10, 24), "spike", 9, 1.6, 5, 0.0004)
    assert alert_sentence(alert, "Iraq-Syria") == (
        "Attacks, Iraq-Syria: 9 stories on Tue 24 Oct against 1.6 expected (bound 5), p < 0.001"
    )


@both_backends
def test_report_command_from_a_database(write_config, tmp_path: Path) -> None:
    config = write_config(theatres=[{"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["Iraq", "Erbil"]}])
    start = date(2024, 1, 1)
    rows = [
        {
            "title": f"Drone attack on base near Erbil in Iraq, day {i}",
            "summary": "Rockets and drones hit the base.",
            "published": f"{start + timedelta(days=i)}T08:00:00Z",
            "source": "wire",
            "link": f"https://w.example/{i}",
        }
        for i in range(35)
    ]
    archive = tmp_path / "a.jsonl"
    archive.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    result = run_cli("report", "--week", "2024-W05", "--out", str(out), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == str(out / "2024-W05.pdf") and all(Path(line).exists() for line in lines)
    assert "Iraq and Syria" in pdf_text(out / "2024-W05.pdf")
    bad = run_cli("report", "--week", "2024-53x", "--config", str(config), cwd=tmp_path)
    assert bad.returncode == 2 and "not an ISO week" in bad.stderr
    # the other commands that read the store answer in their documented shapes on either back-end
    detected = run_cli("detect", "--until", "2024-02-04", "--json", "--config", str(config), cwd=tmp_path)
    assert detected.returncode == 0 and "alerts" in json.loads(detected.stdout), detected.stderr
    status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)
    assert status.returncode == 0 and json.loads(status.stdout), status.stderr
    chains = run_cli("chains", "--json", "--config", str(config), cwd=tmp_path)
    assert chains.returncode == 0 and json.loads(chains.stdout) is not None, chains.stderr
    assert run_cli("retheatre", "--config", str(config), cwd=tmp_path).returncode == 0
