"""`leadflow report funnel --html` writes one self-contained page; headless Chromium renders its charts.

Chromium is Debian's package (`make chromium`, which `make test` runs first). The page is opened from a file
with networking off; the test reads the rendered DOM (`--dump-dom`) and the pixels of a screenshot (PNG
decoded with the standard library), so a chart that does not render, or renders the wrong proportions, fails.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from datetime import date
from pathlib import Path

import pytest

from leadflow.cli_report import COLOURS, render_html
from leadflow.domain.funnel import FunnelSettings, build_report

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1540,1000",
]
COUNTS = {"lead": 400, "mql": 140, "sql": 80, "opportunity": 40, "customer": 10}


def _report() -> dict:
    counters = []
    for day, channel, share in (
        ("2026-11-02", "zhihu", 0.5),
        ("2026-11-10", "baidu", 0.3),
        ("2026-11-20", "meta", 0.2),
    ):
        counters.append((day, channel, {f"in_{s}": round(n * share) for s, n in COUNTS.items()}))
    spend = [("2026-11-02", "zhihu", "q4", 21000.0), ("2026-11-10", "baidu", "q4", 30000.0)]
    settings = FunnelSettings(currency="CNY", reference_bands={"lead_to_mql": (0.3, 0.4)})
    return build_report("source", "first", date(2026, 11, 1), date(2026, 11, 30), counters, spend, settings)


def _chromium(page: Path, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - Debian's chromium, our own page
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _png_rows(path: Path) -> list[list[tuple[int, int, int]]]:
    """RGB rows of a non-interlaced 8-bit RGB/RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append([tuple(line[x * channels : x * channels + 3]) for x in range(width)])
        previous = line
    return rows


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _longest_run(row: list[tuple[int, int, int]], colour: tuple[int, int, int]) -> int:
    best = run = 0
    for pixel in row:
        run = run + 1 if all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True)) else 0
        best = max(best, run)
    return best


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian's chromium: run `make chromium` (make test does)"
)
def test_the_report_page_renders_its_charts_in_headless_chromium(tmp_path):
    # Given the page `leadflow report funnel --html` writes for a report
    page = tmp_path / "funnel.html"
    page.write_text(render_html(_report()), encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    # Then it is self-contained: no script, nothing loaded from elsewhere
    assert "<script" not in text and not re.search(r"""(src|href)=["']?(https?:)?//""", text)

    # When Chromium renders it
    dom = _chromium(page, tmp_path, "--dump-dom")
    shot = tmp_path / "shot.png"
    _chromium(page, tmp_path, f"--screenshot={shot}")

    # Then the DOM holds the four charts, the funnel's bars in proportion to the counts
    for chart in ("funnel-chart", "trend-chart", "conversion-chart", "cost-chart"):
        assert f'id="{chart}"' in dom
    widths = {
        m.group(1): float(m.group(3))
        for m in re.finditer(r'data-stage="(\w+)" data-count="(\d+)" x="[\d.]+" y="\d+" width="([\d.]+)"', dom)
    }
    assert list(widths) == list(COUNTS)
    assert widths["mql"] / widths["lead"] == pytest.approx(COUNTS["mql"] / COUNTS["lead"], rel=0.01)
    assert len(re.findall(r'<rect class="bar" data-group=', dom)) == 3 + 2  # 3 channels' rates, 2 with a cost
    assert len(re.findall(r'<polyline class="trend"', dom)) == 3

    # And the screenshot shows the funnel bars in their colours, as wide as their counts say
    rows = _png_rows(shot)
    runs = {stage: max(_longest_run(row, _rgb(COLOURS[stage])) for row in rows[:500]) for stage in ("lead", "mql")}
    assert runs["lead"] >= 400  # the widest bar spans most of the chart
    assert runs["mql"] / runs["lead"] == pytest.approx(COUNTS["mql"] / COUNTS["lead"], abs=0.03)
    readme_shot = Path(__file__).resolve().parents[2] / "docs" / "funnel-report.png"
    assert readme_shot.is_file()  # the README shows this page (docs/funnel-report.png)
