"""Operator commands of funnel analytics (a development tool like cli.py, never in the layer):

- `leadflow report funnel [--group-by source] [--attribution first] [--from D] [--to D] [--json] [--html F]`
  asks `GET /v1/reports/funnel` (a local stack, or AWS signed with your credentials) and prints the table;
  `--html` also writes one self-contained page (inline SVG, no script, nothing fetched).
- `leadflow report rebuild` recounts every counter from the stored leads (in your shell, against the table).
- `leadflow spend import FILE.csv` stores ad spend (`date, channel, campaign, cost, currency`).
"""

from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlencode

GROUPS = ("source", "utm_source", "utm_medium", "utm_campaign", "owner", "team", "variant")
FUNNEL = ("lead", "mql", "sql", "opportunity", "customer")
RATE_LABELS = {"lead_to_mql": "Lead→MQL", "mql_to_sql": "MQL→SQL", "sql_to_customer": "SQL→cust"}


def add_commands(commands, default_url: str) -> None:
    report = commands.add_parser("report", help="funnel analytics: the report (table, JSON, HTML) and its rebuild")
    report_commands = report.add_subparsers(dest="action", required=True)
    funnel = report_commands.add_parser("funnel", help="counts, rates, medians, cost and targets per group")
    funnel.add_argument("--group-by", default="source", choices=GROUPS)
    funnel.add_argument("--attribution", default="first", choices=("first", "last"))
    funnel.add_argument("--from", dest="from_", help="first day YYYY-MM-DD (default: 90 days before --to)")
    funnel.add_argument("--to", help="last day YYYY-MM-DD (default: today, UTC)")
    funnel.add_argument("--url", default=default_url)
    funnel.add_argument("--json", action="store_true", help="print the API's JSON")
    funnel.add_argument("--html", help="also write a self-contained HTML page with the charts to this file")
    rebuild = report_commands.add_parser("rebuild", help="recount the funnel counters from the stored leads")
    spend = commands.add_parser("spend", help="ad spend for cost per lead/MQL/SQL/customer and ROI")
    spend_commands = spend.add_subparsers(dest="action", required=True)
    spend_import = spend_commands.add_parser("import", help="store a CSV: date, channel, campaign, cost, currency")
    spend_import.add_argument("file")
    for sub in (rebuild, spend_import):
        sub.add_argument("--stack", help="CloudFormation stack whose outputs name the table (on AWS)")
        sub.add_argument("--table", default=os.environ.get("LEADFLOW_TABLE_NAME"))
        sub.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"), help="embedded AWS locally")


def run(args) -> int:
    if args.command == "spend":
        return _spend_import(args)
    if args.action == "rebuild":
        return _rebuild(args)
    return _funnel(args)


def _funnel(args) -> int:
    from leadflow.cli import _print, _request

    query = {"group_by": args.group_by, "attribution": args.attribution}
    query.update({k: v for k, v in (("from", args.from_), ("to", args.to)) if v})
    status, body = _request("GET", f"{args.url.rstrip('/')}/v1/reports/funnel?{urlencode(query)}")
    if status != 200:
        return _print(status, body)
    report = json.loads(body)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render_table(report))
    if args.html:
        Path(args.html).write_text(render_html(report), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0


def _rebuild(args) -> int:
    from leadflow.cli import _bind_table

    _bind_table(args)
    from leadflow.services import funnel

    result = funnel.rebuild()
    print(
        f"rebuilt the funnel counters from {result['leads']} leads: {result['cleared']} counter items cleared, "
        f"{result['written']} written ({result['months']} months)"
    )
    return 0


def _spend_import(args) -> int:
    from leadflow.cli import _bind_table
    from leadflow.errors import ValidationFailed

    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        print(f"{args.file}: cannot be read: {error}", file=sys.stderr)
        return 2
    _bind_table(args)
    from leadflow.services import funnel

    try:
        count = funnel.import_spend(text, args.file)
    except ValidationFailed as error:
        for problem in error.errors:
            print(f"{problem.field}: {problem.message}", file=sys.stderr)
        print("nothing was imported", file=sys.stderr)
        return 2
    print(f"imported {count} spend rows from {args.file}")
    return 0


# ------------------------------------------------------------------------------------------------ table
def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _mark(row: dict, name: str) -> str:
    mark = row.get("marks", {}).get(name) or {}
    band = {"below": "v", "above": "^", "within": "="}.get(mark.get("band") or "", "")
    target = "!" if mark.get("vs_target") == "below" else ""
    return band + target


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_table(report: dict) -> str:
    """The report as the terminal shows it: one line per group and the total, rates marked against the
    reference bands (`=` within, `v` below, `^` above) and the target (`!` below target)."""
    head = (
        f"funnel by {report['group_by']} ({report['attribution']} touch), {report['from']} to {report['to']}, "
        f"costs in {report['currency']}"
    )
    short = {"opportunity": "opp", "customer": "cust", "disqualified": "disq"}
    columns = f"{'group':<24}" + "".join(f"{short.get(s, s):>7}" for s in (*FUNNEL, "disqualified"))
    columns += (
        "".join(f"{label:>12}" for label in RATE_LABELS.values())
        + f"{'h L→M':>8}{'spend':>10}{'cost/MQL':>10}{'ROI':>8}"
    )
    lines = [head, columns]
    for row in [*report["rows"], {"group": "all", **report["totals"]}]:
        line = f"{str(row['group'])[:23]:<24}" + "".join(
            f"{row['counts'].get(s, 0):>7}" for s in (*FUNNEL, "disqualified")
        )
        for name in RATE_LABELS:
            line += f"{_pct(row['rates'].get(name)) + _mark(row, name):>12}"
        median = row.get("median_hours", {}).get("lead_to_mql")
        line += f"{'-' if median is None else median:>8}"
        line += f"{_money(row.get('spend') or None):>10}{_money(row['cost_per'].get('mql')):>10}"
        line += f"{'-' if row.get('roi') is None else format(row['roi'], '.1f'):>8}"
        lines.append(line)
    targets = report["totals"].get("targets") or {}
    if targets:
        lines.append(
            "targets for the range: "
            + ", ".join(
                f"{s} {t['actual']}/{t['target']:g}{'' if t['met'] else ' (behind)'}"
                for s, t in targets.items()
                if s in FUNNEL
            )
        )
    lines.append("rates: = within the reference band, v below, ^ above; ! below the quarter's target")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ HTML
COLOURS = {"lead": "#4e79a7", "mql": "#59a14f", "sql": "#f28e2b", "opportunity": "#b07aa1", "customer": "#e15759"}
WIDTH = 720


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _funnel_svg(totals: dict) -> str:
    counts = totals["counts"]
    top = max([counts.get(s, 0) for s in FUNNEL] + [1])
    bar_h, gap, parts = 44, 12, []
    for i, stage in enumerate(FUNNEL):
        n = counts.get(stage, 0)
        width = max(2.0, (WIDTH - 200) * n / top)
        x, y = 100 + ((WIDTH - 200) - width) / 2, 10 + i * (bar_h + gap)
        parts.append(
            f'<rect class="stage" data-stage="{stage}" data-count="{n}" x="{x:.1f}" y="{y}" width="{width:.1f}" '
            f'height="{bar_h}" fill="{COLOURS[stage]}"/>'
            + (
                f'<text x="{WIDTH / 2}" y="{y + bar_h / 2 + 5}" text-anchor="middle" class="on-bar">{stage} {n}</text>'
                if width >= 140
                else f'<text x="{x + width + 8:.1f}" y="{y + bar_h / 2 + 5}">{stage} {n}</text>'
            )
        )
    height = 10 + len(FUNNEL) * (bar_h + gap)
    return (
        f'<svg id="funnel-chart" role="img" aria-label="funnel" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}">{"".join(parts)}</svg>'
    )


def _bars_svg(chart_id: str, items: list[tuple[str, float | None]], fmt, colour: str, band=None) -> str:
    """Horizontal bars, one per group (missing values drawn as a dash), with an optional shaded band."""
    values = [v for _, v in items if v is not None]
    top = max([*values, band[1] if band else 0, 1e-9])
    row_h, label_w, plot_w = 26, 190, WIDTH - 190 - 90
    height = 10 + row_h * max(1, len(items))
    parts = []
    if band:
        x0, x1 = label_w + plot_w * band[0] / top, label_w + plot_w * band[1] / top
        parts.append(f'<rect class="band" x="{x0:.1f}" y="0" width="{x1 - x0:.1f}" height="{height}" fill="#e8f4ea"/>')
    for i, (group, value) in enumerate(items):
        y = 10 + i * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{_e(group)}</text>')
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 15}" class="muted">-</text>')
            continue
        width = max(1.0, plot_w * value / top)
        parts.append(
            f'<rect class="bar" data-group="{_e(group)}" data-value="{value}" x="{label_w}" y="{y + 3}" '
            f'width="{width:.1f}" height="{row_h - 8}" fill="{colour}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 15}">{_e(fmt(value))}</text>'
        )
    return (
        f'<svg id="{chart_id}" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
        f"{''.join(parts)}</svg>"
    )


def _trend_svg(weeks: list[dict]) -> str:
    height, left, bottom, plot_w, plot_h = 260, 50, 30, WIDTH - 50 - 110, 200
    top = max([w["counts"].get(s, 0) for w in weeks for s in ("lead", "mql", "sql")] + [1])
    step = plot_w / max(1, len(weeks) - 1)
    parts = [
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="18" text-anchor="end">{top}</text>',
    ]
    for j, stage in enumerate(("lead", "mql", "sql")):
        points = " ".join(
            f"{left + i * step:.1f},{10 + plot_h - plot_h * w['counts'].get(stage, 0) / top:.1f}"
            for i, w in enumerate(weeks)
        )
        parts.append(
            f'<polyline class="trend" data-stage="{stage}" points="{points}" fill="none" '
            f'stroke="{COLOURS[stage]}" stroke-width="3"/>'
            f'<text x="{left + plot_w + 12}" y="{30 + 22 * j}" fill="{COLOURS[stage]}">{stage}</text>'
        )
    for i, w in enumerate(weeks):
        if len(weeks) <= 14 or i % 2 == 0:
            parts.append(
                f'<text x="{left + i * step:.1f}" y="{height - bottom + 22}" text-anchor="middle" '
                f'class="small">{_e(w["week"][5:])}</text>'
            )
    return (
        f'<svg id="trend-chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
        f"{''.join(parts)}</svg>"
    )


def render_html(report: dict) -> str:
    """One self-contained page: funnel chart, conversion by group, cost per MQL by group, trend per week."""
    totals = report["totals"]
    rows = report["rows"][:15]
    band = (totals.get("marks", {}).get("lead_to_mql") or {}).get("reference")
    conversion = _bars_svg(
        "conversion-chart",
        [(r["group"], r["rates"].get("lead_to_mql")) for r in rows],
        lambda v: f"{v:.1%}",
        COLOURS["mql"],
        tuple(band) if band else None,
    )
    cost = _bars_svg(
        "cost-chart",
        [(r["group"], r["cost_per"].get("mql")) for r in rows],
        lambda v: f"{v:,.0f} {report['currency']}",
        COLOURS["sql"],
    )
    rates = " · ".join(
        f"{label} {_pct(totals['rates'].get(name))}"
        + (
            f" ({totals['marks'][name]['band']} the reference band)"
            if (totals.get("marks", {}).get(name) or {}).get("band")
            else ""
        )
        for name, label in RATE_LABELS.items()
    )
    title = f"LeadFlow funnel by {report['group_by']} ({report['attribution']} touch)"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>
body {{ font: 14px/1.4 "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; background: #fff; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} h2 {{ font-size: 16px; margin: 22px 0 6px; }}
.muted, .small {{ fill: #777; color: #777; }} .small {{ font-size: 11px; }}
svg text {{ font-size: 13px; }} svg text.on-bar {{ fill: #fff; font-weight: bold; }}
.grid {{ display: grid; grid-template-columns: {WIDTH}px {WIDTH}px; gap: 8px 32px; }}
</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">{_e(report["from"])} to {_e(report["to"])} · costs in {_e(report["currency"])} · {_e(rates)}</p>
<div class="grid">
<section><h2>Funnel</h2>{_funnel_svg(totals)}</section>
<section><h2>Trend per week</h2>{_trend_svg(report.get("weeks") or [])}</section>
<section><h2>Lead→MQL conversion by {_e(report["group_by"])}</h2>{conversion}</section>
<section><h2>Cost per MQL by {_e(report["group_by"])}</h2>{cost}</section>
</div>
</body></html>
"""
