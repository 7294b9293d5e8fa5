"""`leadflow demo`: realistic mixed traffic against a running stack, then a summary per source.

Everything is signed with the development secrets of infra/local/secrets.json. The traffic mixes the
website form (browser fetch and plain HTML), the generic webhook, people who come back through another
source, provider redeliveries, double submits, a bot filling the honeypot, and deliberately bad requests.
It grows with each capability that lands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

SECRETS = Path(__file__).resolve().parents[1] / "secrets.json"

PEOPLE = [
    ("Ada", "Lovelace", "ada@analytical-engines.co.uk", "+44 20 7946 0958", "Analytical Engines", "CTO", "GB"),
    ("Grace", "Hopper", "grace@cobol-systems.com", "(415) 555-2671", "COBOL Systems", "VP Engineering", "US"),
    ("Katherine", "Johnson", "katherine@orbital-math.com", "+1 757 555 0142", "Orbital Math", "Head of Data", "US"),
    ("Alan", "Turing", "alan@bletchley-labs.co.uk", "+44 1908 555 010", "Bletchley Labs", "Founder", "GB"),
    ("Hedy", "Lamarr", "hedy@spread-spectrum.at", "+43 1 5555 1234", "Spread Spectrum", "Product Lead", "AT"),
    ("Wang", "Zhenyi", "wang.zhenyi@xingchen-tech.cn", "+86 10 5555 1234", "Xingchen Tech", "CMO", "CN"),
    ("Emmy", "Noether", "emmy@invariant.de", "+49 30 5555 1234", "Invariant GmbH", "Research Director", "DE"),
    ("Margaret", "Hamilton", "margaret@apollo-software.com", "+1 617 555 0199", "Apollo Software", "Director", "US"),
    ("Radia", "Perlman", "radia@spanning-tree.net", "+1 408 555 0123", "Spanning Tree", "Architect", "US"),
    ("Tu", "Youyou", "tu.youyou@qinghao-bio.cn", "+86 21 5555 6789", "Qinghao Bio", "Head of R&D", "CN"),
    ("Marie", "Curie", "marie@radium-institute.fr", "+33 1 55 55 12 34", "Radium Institute", "Lab Manager", "FR"),
    ("Chien-Shiung", "Wu", "cs.wu@parity-labs.com", "+1 212 555 0168", "Parity Labs", "Principal", "US"),
]
CAMPAIGNS = [
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand-search", "gclid": "Cj0KCQiA{n}_BwE"},
    {"utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": "q4-webinar", "fbclid": "IwAR{n}xYz"},
    {"utm_source": "linkedin", "utm_medium": "paid_social", "utm_campaign": "abm-enterprise", "li_fat_id": "li{n}"},
    {"utm_source": "baidu", "utm_medium": "cpc", "utm_campaign": "cn-launch", "bd_vid": "bd{n}Vid"},
    {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "november-digest"},
    {},  # direct
]


def _secret(name: str) -> Any:
    return json.loads(SECRETS.read_text())[name]


def _standard_webhook(body: bytes, secret: str, msg_id: str, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,{sig}",
    }


@dataclass
class Shot:
    source: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    kind: str = "submission"  # submission | redelivery | bot | bad


@dataclass
class Tally:
    received: int = 0
    new: int = 0
    merged: int = 0
    repeated: int = 0
    blocked: int = 0
    rejected: Counter = field(default_factory=Counter)


def build_traffic(url: str, seed: int = 7) -> list[Shot]:
    rng = random.Random(seed)
    origin = {"origin": url}
    shots: list[Shot] = []
    generic = _secret("webhooks/generic")
    for n, (first, last, email, phone, company, title, country) in enumerate(PEOPLE):
        campaign = {k: v.format(n=n) for k, v in rng.choice(CAMPAIGNS).items()}
        page = "https://www.example.com/pricing"
        form = {
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "job_title": title,
            "country": country,
            "consent_email": "on",
            "page_url": page,
            **campaign,
            "_hp": "",
        }
        if n % 3 == 0:  # a plain HTML form: urlencoded, redirected to the thank-you page
            body = urlencode({**form, "_redirect": "https://www.example.com/thanks"}).encode()
            shots.append(
                Shot(
                    "form:website (html)",
                    "POST",
                    "/v1/forms/website",
                    body,
                    {"content-type": "application/x-www-form-urlencoded"},
                )
            )
        else:
            shots.append(
                Shot(
                    "form:website (fetch)",
                    "POST",
                    "/v1/forms/website",
                    json.dumps(form).encode(),
                    {"content-type": "application/json", **origin},
                )
            )
            if n % 4 == 1:  # double click on submit
                shots.append(
                    Shot(
                        "form:website (fetch)",
                        "POST",
                        "/v1/forms/website",
                        json.dumps(form).encode(),
                        {"content-type": "application/json", **origin},
                        kind="redelivery",
                    )
                )
        if n % 2 == 0:  # the same person again, later, from a CRM-side system via the generic webhook
            data = {
                "email": email.upper(),
                "phone": phone,
                "country": country,
                "company_size": rng.choice(["11-50", "51-200", "1,000+", "5000"]),
                "industry": "Software",
                **campaign,
            }
            body = json.dumps({"type": "lead.submitted", "timestamp": int(time.time()), "data": data}).encode()
            msg = f"msg_demo_{n}"
            headers = _standard_webhook(body, generic, msg)
            shots.append(Shot("generic", "POST", "/v1/webhooks/generic", body, headers))
            if n % 4 == 0:  # the sender retried a delivery it had already made
                shots.append(Shot("generic", "POST", "/v1/webhooks/generic", body, headers, kind="redelivery"))
    # new people only seen through the webhook
    for n in range(4):
        data = {
            "email": f"lead{n}@northwind-traders.com",
            "first_name": f"Lead{n}",
            "company": "Northwind Traders",
            "utm_source": "partner",
            "utm_medium": "referral",
            "utm_campaign": "reseller-q4",
        }
        body = json.dumps({"type": "lead.submitted", "data": data}).encode()
        shots.append(
            Shot("generic", "POST", "/v1/webhooks/generic", body, _standard_webhook(body, generic, f"msg_partner_{n}"))
        )
    # junk that is kept, flagged, as disqualified
    shots.append(
        Shot(
            "form:website (fetch)",
            "POST",
            "/v1/forms/website",
            json.dumps({"email": "someone@mailinator.com"}).encode(),
            {"content-type": "application/json", **origin},
        )
    )
    # a bot fills the honeypot: answered as a success, nothing stored
    shots.append(
        Shot(
            "form:website (fetch)",
            "POST",
            "/v1/forms/website",
            json.dumps({"email": "bot@spam-farm.biz", "_hp": "http://spam"}).encode(),
            {"content-type": "application/json", **origin},
            kind="bot",
        )
    )
    # deliberately bad requests
    body = json.dumps({"type": "lead.submitted", "data": {"email": "mallory@evil-corp.com"}}).encode()
    tampered = _standard_webhook(body, generic, "msg_bad_sig")
    shots.append(Shot("generic", "POST", "/v1/webhooks/generic", body.replace(b"mallory", b"eve"), tampered, "bad"))
    stale = _standard_webhook(body, generic, "msg_stale", ts=int(time.time()) - 3600)
    shots.append(Shot("generic", "POST", "/v1/webhooks/generic", body, stale, "bad"))
    broken = b'{"type": "lead.submitted", "data": '
    shots.append(
        Shot("generic", "POST", "/v1/webhooks/generic", broken, _standard_webhook(broken, generic, "m_x"), "bad")
    )
    shots.append(
        Shot(
            "form:website (fetch)",
            "POST",
            "/v1/forms/website",
            json.dumps({"first_name": "No Contact"}).encode(),
            {"content-type": "application/json", **origin},
            "bad",
        )
    )
    shots.append(
        Shot(
            "form:website (fetch)",
            "POST",
            "/v1/forms/website",
            json.dumps({"email": "x@y.io"}).encode(),
            {"content-type": "application/json", "origin": "https://phishing.example.net"},
            "bad",
        )
    )
    return shots


def _send(url: str, shot: Shot) -> tuple[int, Any, str]:
    # the stack's own http(s) URL, given by the operator
    request = urllib.request.Request(url + shot.path, data=shot.body, headers=shot.headers, method=shot.method)  # noqa: S310

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            raw = response.read()
            return response.status, _json(raw), ""
    except urllib.error.HTTPError as error:
        raw = error.read()
        doc = _json(raw)
        return error.code, doc, (doc or {}).get("title", "") if isinstance(doc, dict) else ""


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def run_demo(url: str, out: IO[str] = sys.stdout, seed: int = 7) -> dict[str, Tally]:
    shots = build_traffic(url.rstrip("/"), seed)
    tallies: dict[str, Tally] = defaultdict(Tally)
    tty = out.isatty()
    print(f"demo: sending {len(shots)} requests to {url}", file=out, flush=True)
    for i, shot in enumerate(shots, 1):
        status, doc, title = _send(url.rstrip("/"), shot)
        tally = tallies[shot.source]
        tally.received += 1
        answers = []
        if isinstance(doc, dict):
            answers = doc.get("leads") or ([doc] if "lead_id" in doc else [])
        if status >= 400:
            tally.rejected[f"{status} {title}".strip()] += 1
        elif shot.kind == "bot":
            tally.blocked += 1
        elif shot.kind == "redelivery":
            tally.repeated += 1
        elif status == 303:
            tally.new += 1  # the HTML form does not tell; the activity lines show what happened
        else:
            for answer in answers:
                if answer.get("status") == "created":
                    tally.new += 1
                else:
                    tally.merged += 1
        if tty:
            bar = "#" * (30 * i // len(shots))
            print(f"\r  [{bar:<30}] {i}/{len(shots)}", end="", file=out, flush=True)
        else:
            time.sleep(0.01)  # let the activity lines interleave readably
    if tty:
        print(file=out)
    print(summary(tallies), file=out, flush=True)
    return dict(tallies)


def summary(tallies: dict[str, Tally]) -> str:
    lines = [
        "",
        "demo summary",
        f"  {'source':<22}{'received':>9}{'new':>6}{'merged':>8}{'repeat':>8}{'bot':>5}  rejected",
    ]
    for source, t in sorted(tallies.items()):
        rejected = ", ".join(f"{reason} ×{count}" for reason, count in sorted(t.rejected.items())) or "-"
        lines.append(f"  {source:<22}{t.received:>9}{t.new:>6}{t.merged:>8}{t.repeated:>8}{t.blocked:>5}  {rejected}")
    return "\n".join(lines)
