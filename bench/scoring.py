"""Scoring benchmark: a lead with 200 engagement events against a model of 50 rules, per lead, as a ratio to
a bare loop over the same events measured in the same run.

`make bench` runs it. The LeadFlow side is `leadflow.domain.scoring.score_lead`: persona, 20 fit rules and
30 behaviour rules (page-view URL patterns, property patterns on downloads, caps per rule and per period,
skip_first, score groups from an event property, half-life decay and a window), with the breakdown.
The floor is the least any scorer of these events must do: a hand-written loop that reads each event's
type and time, parses the time, looks the type up in a fixed points table and adds the points with the
same half-life decay. Only the ratio is judged (target ≤ 3×); exit status 1 when it is missed.

The leads are a pool of 20 with different events (a site of ~500 pages with campaign links, several
hundred distinct page URLs) scored in turn after a warm-up, as a warm Lambda would: which rule a page URL
goes to is remembered by the model for the process (bounded), so a URL already seen costs a dict lookup.
The line "first lead on a model that has decided nothing yet" shows the cold cost (not judged).

Knobs: BENCH_ROUNDS (default 7), BENCH_CALLS (calls per side per round, default 200).
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "leadflow"))

from leadflow.domain.scoring import score_lead  # noqa: E402
from leadflow.scoring_model import load_model  # noqa: E402

TARGET = 3.0
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
CALLS = int(os.environ.get("BENCH_CALLS", "200"))
EVENTS = 200
LEADS = 20
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HALF_LIFE_DAYS = 45

PAGES = ["pricing", "demo", "trial", "integrations", "security", "customers", "docs", "blog", "careers"]
PRODUCTS = ["capture", "scoring", "journeys"]


def model_text() -> str:
    """A YAML model of 20 fit rules and 30 behaviour rules (regular expressions, lists, caps, groups, decay)."""
    fit = [
        (
            "title_exec",
            "      exclusive: seniority\n      field: job_title\n      matches: ['\\bvp\\b', 'head of', "
            "'\\bchief\\b', 'director', '总监', '总裁', '首席']\n      points: 25",
        ),
        (
            "title_manager",
            "      exclusive: seniority\n      field: job_title\n      matches: ['manager', '经理', "
            "'主管']\n      points: 10",
        ),
        ("title_student", "      field: job_title\n      matches: ['student', 'intern', '学生']\n      points: -20"),
        ("persona_icp", "      persona: [mid_market, enterprise]\n      points: 15"),
        ("persona_smb", "      persona: [smb]\n      points: 5"),
        ("industry", "      exclusive: industry\n      field: industry\n      in: industries\n      points: 20"),
        (
            "industry_like",
            "      exclusive: industry\n      field: industry\n      matches: ['software', "
            "'saas', '软件']\n      points: 15",
        ),
        ("country", "      field: country\n      in: markets\n      points: 5"),
        ("budget_large", "      exclusive: budget\n      field: budget\n      min: 50000\n      points: 15"),
        ("budget_some", "      exclusive: budget\n      field: budget\n      min: 10000\n      points: 5"),
        ("seats_many", "      exclusive: seats\n      field: seats\n      min: 50\n      points: 10"),
        ("seats_some", "      exclusive: seats\n      field: seats\n      min: 10\n      points: 5"),
        (
            "timeline",
            "      field: purchase_timeline\n      matches: ['this quarter', 'asap', '本季度']\n      points: 10",
        ),
        ("interest", "      field: product_interest\n      present: true\n      points: 5"),
        ("phone", "      field: phone\n      present: true\n      points: 3"),
        ("company", "      field: company\n      present: true\n      points: 2"),
        ("competitor", "      domains: [rival.example]\n      points: -50"),
        ("student_mail", "      domains: student\n      points: -30"),
        ("free_mail", "      domains: free\n      points: -25"),
        ("seniority", "      field: seniority\n      in: [vp, cxo, director]\n      points: 5"),
    ]
    behaviour = []
    for page in PAGES:
        behaviour.append(
            (
                f"page_{page}",
                f"      event: page_view\n      properties: {{url: ['/{page}\\b']}}\n"
                "      points: 3\n      per_period: {days: 7, max_events: 3}\n      max_points: 30",
            )
        )
    for i in range(9):
        behaviour.append(
            (
                f"page_section_{i}",
                f"      event: page_view\n      properties: {{url: ['/section-{i}/']}}\n"
                "      points: 1\n      max_events: 10",
            )
        )
    behaviour.append(("page_any", "      event: page_view\n      points: 1\n      max_points: 10"))
    for i, asset in enumerate(["whitepaper", "ebook", "case-study"]):
        behaviour.append(
            (
                f"download_{asset}",
                f"      event: content_download\n      properties: {{asset: ['{asset}']}}\n"
                f"      points: {8 + i}\n      max_points: 40",
            )
        )
    behaviour.append(("download_any", "      event: content_download\n      points: 4\n      max_points: 20"))
    behaviour += [
        ("email_click", "      event: email_click\n      points: 5\n      per_period: {days: 7, max_events: 3}"),
        ("email_open", "      event: email_open\n      points: 1\n      per_period: {days: 7, max_events: 3}"),
        ("webinar_registered", "      event: webinar_registered\n      points: 5\n      max_points: 20"),
        ("webinar_again", "      event: webinar_attended\n      points: 15\n      max_points: 45"),
        ("meeting", "      event: meeting_booked\n      points: 30\n      decay: {half_life_days: 90}"),
        ("form_submit", "      event: form_submit\n      points: 5\n      skip_first: 1"),
        ("page_unused", "      event: email_click\n      properties: {campaign: ['never']}\n      points: 1"),
    ]
    # the catch-all email_click must come after the specific one
    behaviour.sort(key=lambda rule: rule[0] == "email_click")
    assert len(fit) == 20 and len(behaviour) == 30, (len(fit), len(behaviour))
    lines = [
        "version: 1",
        "lists:",
        "  industries: [software, saas, internet, 软件, 互联网]",
        "  markets: ['US', 'GB', 'DE', 'CN', 'SG']",
        "  free: [gmail.com, qq.com, 163.com, outlook.com]",
        "  student: [edu, edu.cn, ac.uk]",
        "personas:",
        "  default: unknown",
        "  rules:",
        "    - id: smb\n      company_size: {max: 49}",
        "    - id: mid_market\n      company_size: {min: 50, max: 999}",
        "    - id: enterprise\n      company_size: {min: 1000}",
        "fit:",
        "  grades: {A: 60, B: 40, C: 20}",
        "  rules:",
        *(f"    - id: {rule_id}\n{body}" for rule_id, body in fit),
        "behaviour:",
        f"  decay: {{half_life_days: {HALF_LIFE_DAYS}, window_days: 365}}",
        "  groups: {property: product, values: [capture, scoring, journeys]}",
        "  rules:",
        *(f"    - id: {rule_id}\n{body}" for rule_id, body in behaviour),
        "qualification:",
        "  mql: {min_grade: B, min_behaviour: 50}",
    ]
    return "\n".join(lines) + "\n"


def make_events(rng: random.Random) -> list[dict]:
    """200 events of one lead over 200 days: page views of a site (key pages, articles, campaign links),
    emails, downloads, webinars, meetings, forms, and a few unsubscribes (no points)."""
    kinds = ["page_view"] * 10 + ["email_open"] * 4 + ["email_click"] * 3 + ["content_download"] * 2
    kinds += ["webinar_registered", "webinar_attended", "meeting_booked", "form_submit", "unsubscribe"]
    events = []
    for _ in range(EVENTS):
        kind = rng.choice(kinds)
        at = NOW - timedelta(seconds=rng.uniform(0, 200 * 86400))
        properties: dict = {"product": rng.choice(PRODUCTS + ["other"])}
        if kind == "page_view":
            path = rng.choice([f"/{rng.choice(PAGES)}", f"/section-{rng.randrange(12)}/article-{rng.randrange(40)}"])
            query = rng.choice(["", "", "?utm_source=newsletter", f"?utm_campaign=c{rng.randrange(6)}"])
            properties["url"] = f"https://www.example.com{path}{query}"
        elif kind == "content_download":
            properties["asset"] = rng.choice(["whitepaper-2026", "ebook-scoring", "case-study-acme", "datasheet"])
        events.append({"type": kind, "occurred_at": at.isoformat().replace("+00:00", "Z"), "properties": properties})
    return events


# The floor: a fixed points table per event type, the same half-life, no rules engine.
FLOOR_POINTS = {
    "page_view": 3,
    "email_open": 1,
    "email_click": 5,
    "content_download": 8,
    "webinar_registered": 5,
    "webinar_attended": 15,
    "meeting_booked": 30,
    "form_submit": 5,
}


def bare_loop(events: list[dict], now: datetime) -> float:
    now_ts = now.timestamp()
    rate = math.log(2) / (HALF_LIFE_DAYS * 86400)
    total = 0.0
    for event in events:
        points = FLOOR_POINTS.get(event.get("type"))
        if not points:
            continue
        ts = datetime.fromisoformat(event["occurred_at"]).timestamp()
        total += points * math.exp(-rate * (now_ts - ts))
    return total


def make_lead(rng: random.Random) -> dict:
    return {
        "email": rng.choice(["vp@acme-software.example", "li@qq.com", "s1@pku.edu.cn", "ops@rival.example"]),
        "phone": "+4930123456",
        "company": "Acme",
        "job_title": rng.choice(["VP Sales", "销售总监", "Marketing Manager", "Student", "Engineer"]),
        "country": rng.choice(["DE", "US", "CN", "BR"]),
        "attributes": {
            "company_size": rng.choice(["11-50", "201-500", "1001-5000"]),
            "industry": "SaaS",
            "budget": "$60k",
            "seats": 80,
            "purchase_timeline": "this quarter",
            "product_interest": "scoring",
        },
    }


def main() -> int:
    model = load_model(model_text(), "bench/scoring.py")
    assert len(model.fit_rules) + len(model.behaviour_rules) == 50
    rng = random.Random(20261129)
    leads = [(make_lead(rng), make_events(rng)) for _ in range(LEADS)]
    urls = {e["properties"].get("url") for _, events in leads for e in events} - {None}
    lead, events = leads[0]
    score = score_lead(lead, events, model, NOW)
    print(
        f"{LEADS} leads × {EVENTS} events ({len(urls)} distinct page URLs), {len(model.fit_rules)} fit + "
        f"{len(model.behaviour_rules)} behaviour rules; first lead: fit {score.fit}, behaviour {score.behaviour}, "
        f"grade {score.grade}, groups {score.groups}, {len(score.breakdown)} breakdown items"
    )
    for lead, events in leads * 3:  # warm-up: the process's memo of page → rule decisions fills, as in a warm Lambda
        score_lead(lead, events, model, NOW)
        bare_loop(events, NOW)
    fresh = load_model(model_text(), "bench/scoring.py (fresh copy)")  # the same model, nothing decided yet
    cold = []
    for lead, events in leads:
        start = time.perf_counter()
        score_lead(lead, events, fresh, NOW)
        cold.append(time.perf_counter() - start)
    print(
        f"first lead on a model that has decided nothing yet: {cold[0] * 1e3:.3f} ms; "
        f"median of the first {LEADS} leads: {statistics.median(cold) * 1e3:.3f} ms"
    )
    real_rounds, floor_rounds = [], []
    timer = time.perf_counter
    for _ in range(ROUNDS):
        real, floor = [], []
        for i in range(CALLS):
            lead, events = leads[i % LEADS]
            start = timer()
            score_lead(lead, events, model, NOW)
            middle = timer()
            bare_loop(events, NOW)
            floor.append(timer() - middle)
            real.append(middle - start)
        real_rounds.append(statistics.median(real))
        floor_rounds.append(statistics.median(floor))
    real_ms, floor_ms = statistics.median(real_rounds) * 1e3, statistics.median(floor_rounds) * 1e3
    ratio = real_ms / floor_ms
    print(
        f"score_lead: {real_ms:.3f} ms/lead vs bare loop {floor_ms:.3f} ms/lead → ratio {ratio:.2f} "
        f"(target ≤ {TARGET:g})"
    )
    print(
        "  per-round medians real/floor ms: "
        + ", ".join(f"{r * 1e3:.3f}/{f * 1e3:.3f}" for r, f in zip(real_rounds, floor_rounds, strict=True))
    )
    if ratio > TARGET:
        print(f"MISSED: scoring costs {ratio:.2f}× the bare loop (target ≤ {TARGET:g})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
