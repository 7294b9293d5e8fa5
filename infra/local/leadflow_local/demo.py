"""`leadflow demo`: realistic mixed traffic against a running stack, then a summary per source and the funnel.

Everything is signed with the development secrets of infra/local/secrets.json. The traffic mixes the
website form (browser fetch and plain HTML), the generic webhook, the form tools and lead-form ads
(Typeform, Tally, Webflow, HubSpot forms, Google Ads: demo_forms_tools), the pointer-style ad platforms
(Meta, LinkedIn, TikTok: demo_meta, demo_linkedin_tiktok), ad click callbacks and a lead carrying the
click (demo_callbacks), people who come back through another source, provider redeliveries, double
submits, a bot filling the honeypot, and deliberately bad requests. It grows with each capability that lands.

Pointer-style platforms only name a lead; the stack fetches it from the platform's API. Before such a
webhook is sent, the demo registers the lead it names with the local platform API of `leadflow up`
(leadflow_local.local_platforms, `POST /__leads/<platform>`). Against a stack without one (e.g. on AWS)
the registration fails, which is reported: those webhooks are still acknowledged, their fetches fail.
The terminal shows ids, sources, stages and counts only, never a person's email, phone or name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote_plus, urlencode

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
    kind: str = "submission"  # submission | redelivery | bot | bad | handshake
    # pointer-style platforms: (platform, control path, {platform id: API document}) registered with the
    # local platform API before the shot is sent, and the emails of the leads the stack will fetch
    registrations: list[tuple[str, str, dict]] = field(default_factory=list)
    fetched_emails: list[str] = field(default_factory=list)


@dataclass
class Tally:
    received: int = 0
    new: int = 0
    merged: int = 0
    repeated: int = 0
    blocked: int = 0
    rejected: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # what is neither a lead nor a refusal (handshakes, clicks)
    queued: int = 0  # pointer leads acknowledged, to be fetched from the platform


POINTER_PLATFORMS = ("meta", "linkedin", "tiktok")
# People seen only through an ad platform's lead form (the others merge into people of PEOPLE).
AD_PEOPLE = [
    ("Ida", "Rhodes", "ida@census-compute.com", "+1 202 555 0187", "Census Compute", "Head of Ops", "US"),
    ("Mary", "Jackson", "mary@langley-aero.com", "+1 757 555 0110", "Langley Aero", "VP Marketing", "US"),
]


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
    # engagement from an email no lead holds yet (kept anonymous, applied when the partner lead below appears)
    from leadflow_local import demo_events

    shots.extend(demo_events.early_shots())
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
    shots.extend(_provider_traffic(url, seed))
    shots.extend(demo_events.shots())  # engagement events: scored, one lead qualifies (mql), one unsubscribes
    return shots


def _provider_traffic(url: str, seed: int) -> list[Shot]:
    """Each provider module's shots (own random stream each), pointer leads attached for registration."""
    from leadflow_local import demo_callbacks, demo_forms_tools, demo_linkedin_tiktok, demo_meta

    shots: list[Shot] = []
    for module in (demo_forms_tools, demo_meta, demo_linkedin_tiktok, demo_callbacks):
        shots.extend(module.shots(url, random.Random(f"{seed}:{module.__name__}")))
    people = {"meta": [AD_PEOPLE[0], PEOPLE[1]], "linkedin": [PEOPLE[4]], "tiktok": [AD_PEOPLE[1]]}
    for shot in shots:
        if shot.source in POINTER_PLATFORMS and shot.kind == "submission" and shot.method == "POST":
            _attach_platform_leads(shot, people[shot.source])
    return shots


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


def _attach_platform_leads(shot: Shot, people: list[tuple]) -> None:
    """What the platform's API holds for the leads this webhook names (people taken in turn)."""
    note = json.loads(shot.body)
    turn = iter(people * 4)
    if shot.source == "meta":
        documents = {}
        for entry in note.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                first, last, email, phone, company, title, country = next(turn)
                documents[str(value["leadgen_id"])] = {
                    "created_time": _iso(value.get("created_time") or time.time()),
                    "ad_id": value.get("ad_id"),
                    "adset_id": value.get("adgroup_id"),
                    "campaign_id": "238475610293845",
                    "form_id": value.get("form_id"),
                    "is_organic": False,
                    "platform": "fb",
                    "field_data": [
                        {"name": "email", "values": [email]},
                        {"name": "full_name", "values": [f"{first} {last}"]},
                        {"name": "phone_number", "values": [phone]},
                        {"name": "company_name", "values": [company]},
                        {"name": "job_title", "values": [title]},
                        {"name": "country", "values": [country]},
                        {"name": "when_do_you_plan_to_buy?", "values": ["this_quarter"]},
                    ],
                }
                shot.fetched_emails.append(email)
        shot.registrations.append(("meta", "/__leads/meta", documents))
    elif shot.source == "linkedin" and note.get("leadAction") == "CREATED":
        first, last, email, phone, company, title, country = next(turn)
        form_urn = note["leadGenForm"]
        form_id = form_urn.split("leadGenForm:", 1)[1].split(",", 1)[0].rstrip(")")
        predefined = ["FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE_NUMBER", "COMPANY_NAME", "JOB_TITLE", "COUNTRY"]
        questions = [{"questionId": 11 + i, "name": f.lower(), "predefinedField": f} for i, f in enumerate(predefined)]
        questions.append({"questionId": 18, "name": "Team size"})
        answers = [first, last, email, phone, company, title, country]
        response_id = note["leadGenFormResponse"].rsplit(":", 1)[-1]

        def text(question_id: int, answer: str) -> dict:
            return {"questionId": question_id, "answerDetails": {"textQuestionAnswer": {"answer": answer}}}

        response = {
            "id": response_id,
            "owner": note.get("owner"),
            "submitter": "urn:li:person:DemoSubmitter1",
            "leadType": note.get("leadType", "SPONSORED"),
            "versionedLeadGenFormUrn": form_urn,
            "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:3344556"}},
            "associatedEntity": {"associatedCreative": (note.get("associatedEntity") or {}).get("sponsoredCreative")},
            "submittedAt": note.get("occurredAt"),
            "testLead": False,
            "formResponse": {
                "answers": [text(11 + i, a) for i, a in enumerate(answers)]
                + [{"questionId": 18, "answerDetails": {"multipleChoiceAnswer": {"options": ["51-200"]}}}],
                "consentResponses": [{"consentId": 901, "accepted": True}],
            },
        }
        shot.registrations.append(
            ("linkedin", "/__forms/linkedin", {form_id: {"id": int(form_id), "content": {"questions": questions}}})
        )
        shot.registrations.append(("linkedin", "/__leads/linkedin", {response_id: response}))
        shot.fetched_emails.append(email)
    elif shot.source == "tiktok":
        first, last, email, phone, company, title, _country = next(turn)
        content = json.loads(note["content"])
        data = {
            "lead_data": {
                "name": f"{first} {last}",
                "email": email,
                "phone_number": phone,
                "company_name": company,
                "job_title": title,
                "What is your team size?": "11-50",
            },
            "meta_data": {
                **{k: content[k] for k in ("lead_id", "page_id", "advertiser_id") if k in content},
                "campaign_id": "1780000000000001",
                "campaign_name": "Q4 lead gen",
                "adgroup_id": "1780000000000002",
                "ad_id": "1780000000000003",
                "ttclid": "E.C.P.CvDemoClick-" + content["lead_id"][-6:],
                "create_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            },
        }
        shot.registrations.append(("tiktok", "/__leads/tiktok", {str(content["lead_id"]): data}))
        shot.fetched_emails.append(email)


def _register(platforms_url: str, shot: Shot) -> str | None:
    """Register the shot's platform leads; the reason it failed, or None."""
    for _platform, path, documents in shot.registrations:
        request = urllib.request.Request(  # noqa: S310 - the local platform API's http URL
            platforms_url.rstrip("/") + path,
            data=json.dumps(documents).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            return type(error).__name__
    return None


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


def run_demo(
    url: str,
    out: IO[str] = sys.stdout,
    seed: int = 7,
    platforms_url: str | None = "http://127.0.0.1:3002",
    fetch_wait: float = 30.0,
    crm_url: str | None = "http://127.0.0.1:3001",
) -> dict[str, Tally]:
    """Send the traffic, wait (at most `fetch_wait` s) for pointer leads to be fetched, print summary and funnel."""
    url = url.rstrip("/")
    shots = build_traffic(url, seed)
    tallies: dict[str, Tally] = defaultdict(Tally)
    awaited: list[tuple[str, str]] = []  # (source, email) of the leads the stack fetches from a platform
    platforms_down: str | None = None if platforms_url else "no platform API URL"
    tty = out.isatty()
    print(f"demo: sending {len(shots)} requests to {url}", file=out, flush=True)
    for i, shot in enumerate(shots, 1):
        tally = tallies[shot.source]
        if shot.registrations:
            if platforms_down is None:
                platforms_down = _register(platforms_url or "", shot)
                if platforms_down:
                    print(
                        f"\ndemo: the local platform API at {platforms_url} is not reachable ({platforms_down}): "
                        "Meta/LinkedIn/TikTok webhooks are still sent, their leads cannot be fetched",
                        file=out,
                        flush=True,
                    )
            if platforms_down:
                tally.notes["unregistered (no platform API)"] += len(shot.fetched_emails)
        status, doc, title = _send(url, shot)
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
        elif shot.kind == "handshake":
            tally.notes["handshake"] += 1
        elif shot.path == "/v1/events" and isinstance(doc, dict):
            for result in doc.get("results") or []:
                tally.notes[f"event {result.get('status')}"] += 1
        elif shot.path.startswith("/v1/callbacks/"):
            tally.notes["click recorded"] += 1
        elif status == 303:
            tally.new += 1  # the HTML form does not tell; the activity lines show what happened
        elif shot.source in POINTER_PLATFORMS:
            queued = doc.get("received", 0) if isinstance(doc, dict) else 0
            tally.queued += queued
            if not queued:
                tally.notes["DELETED acknowledged" if b'"DELETED"' in shot.body else "nothing to fetch"] += 1
            if not platforms_down:
                awaited.extend((shot.source, email) for email in shot.fetched_emails)
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
    _await_fetches(url, awaited, tallies, fetch_wait, out)
    sales_accepts_a_google_lead(url, out)
    from leadflow_local.demo_crm import send_crm_feedback  # the CRM's verdicts on the demo's leads

    for name, status in send_crm_feedback(url, crm_url, out).items():
        tallies["crm feedback"].received += 1
        tallies["crm feedback"].notes[f"{name} {status}"] += 1
    print(summary(tallies), file=out, flush=True)
    print(funnel(url, _demo_emails(shots)), file=out, flush=True)
    return dict(tallies)


def sales_accepts_a_google_lead(url: str, out: IO[str]) -> None:
    """A lead from a Google ad click (gclid on its landing page) that sales accepts: the operator moves it to
    sql, and the terminal shows `conversion google-ads … sql (gclid)` once the local Google Ads stand-in has it.
    Not a source of the summary: the activity lines tell what happened."""
    landing = "https://www.example.com/demo?utm_source=google&utm_medium=cpc&gclid=Cj0KDemoGclid"
    body = json.dumps({"email": "dorothy@vaughan-compute.com", "first_name": "Dorothy", "last_name": "Vaughan",
                       "company": "Vaughan Compute", "job_title": "Head of Computing", "country": "US",
                       "page_url": landing})  # fmt: skip
    shot = Shot("form:website", "POST", "/v1/forms/website", body.encode(),
                {"content-type": "application/json", "origin": "http://127.0.0.1:8000"})  # fmt: skip
    status, doc, title = _send(url, shot)
    lead_id = doc.get("lead_id") if isinstance(doc, dict) else None
    if lead_id:
        move = json.dumps({"stage": "sql", "reason": "demo: sales accepted the lead"}).encode()
        path = f"/v1/leads/{lead_id}/stage"
        status, _doc, title = _send(url, Shot("operator", "POST", path, move, {"content-type": "application/json"}))
    if status >= 400 or not lead_id:
        print(f"demo: the Google-click lead could not be moved to sql ({status} {title})", file=out, flush=True)


def _lookup(url: str, email: str) -> tuple[int, Any]:
    status, doc, _ = _send(url, Shot("lookup", "GET", "/v1/leads?email=" + quote(email, safe=""), b"", {}))
    return status, doc


def _await_fetches(
    url: str, awaited: list[tuple[str, str]], tallies: dict[str, Tally], wait: float, out: IO[str]
) -> None:
    """Pointer leads become leads once the fetch function has read them: poll for each, up to `wait` s."""
    if not awaited:
        return
    print(f"demo: waiting up to {wait:.0f} s for {len(awaited)} ad-platform leads to be fetched", file=out, flush=True)
    deadline = time.monotonic() + wait
    pending = list(awaited)
    while pending:
        still = []
        for source, email in pending:
            status, lead = _lookup(url, email)
            attributes = (lead or {}).get("attributes") or {} if status == 200 and isinstance(lead, dict) else {}
            if any(str(name).startswith(f"{source}_") for name in attributes):  # the fetched answers are in
                first = ((lead.get("attribution") or {}).get("first_touch") or {}).get("source")
                if first == source:
                    tallies[source].new += 1
                else:
                    tallies[source].merged += 1
            else:
                still.append((source, email))
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for source, _email in pending:
        tallies[source].notes["not fetched (see leadflow dlq list)"] += 1


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _demo_emails(shots: list[Shot]) -> list[str]:
    """Every email the demo submitted as a lead (bots and deliberately bad requests left out)."""
    found: dict[str, None] = {}
    for shot in shots:
        if shot.kind in ("bad", "bot"):
            continue
        text = unquote_plus(shot.body.decode("utf-8", "replace")) + " ".join(shot.fetched_emails)
        for email in EMAIL.findall(text):
            found.setdefault(email.lower())
    return list(found)


STAGES = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"]


def funnel(url: str, emails: list[str]) -> str:
    """The demo's own leads per lifecycle stage and first-touch source (read with GET /v1/leads?email=)."""
    leads: dict[str, dict] = {}
    refused: Counter = Counter()
    for email in emails:
        status, lead = _lookup(url, email)
        if status == 200 and isinstance(lead, dict) and lead.get("lead_id"):
            leads[lead["lead_id"]] = lead
        elif status != 404:
            refused[status] += 1
    lines = ["", f"resulting funnel: {len(leads)} leads from this demo (GET /v1/leads?email= for each person)"]
    if refused:
        lines.append("  lookups refused: " + ", ".join(f"HTTP {s} ×{n}" for s, n in sorted(refused.items())))
    if not leads:
        return "\n".join(lines)
    by_source: dict[str, Counter] = defaultdict(Counter)
    for lead in leads.values():
        source = ((lead.get("attribution") or {}).get("first_touch") or {}).get("source") or "?"
        by_source[source][lead.get("lifecycle_stage") or "?"] += 1
    total = sum(by_source.values(), Counter())
    stages = [s for s in STAGES if total[s]] + sorted(s for s in total if s not in STAGES)
    width = {s: max(len(s), 5) + 2 for s in stages}
    lines.append(f"  {'first touch':<22}{'leads':>6}" + "".join(f"{s:>{width[s]}}" for s in stages))
    for source, counts in sorted(by_source.items()):
        cells = "".join(f"{counts[s] or '-':>{width[s]}}" for s in stages)
        lines.append(f"  {source:<22}{sum(counts.values()):>6}{cells}")
    lines.append(f"  {'all':<22}{len(leads):>6}" + "".join(f"{total[s]:>{width[s]}}" for s in stages))
    lines += crm_pushes(url, leads)
    lines += funnel_report(url)
    return "\n".join(lines)


def funnel_report(url: str) -> list[str]:
    """The same funnel from the stream's counters (`GET /v1/reports/funnel`, what `leadflow report funnel` prints)."""
    from leadflow.cli_report import render_table

    status, doc, _ = _send(url, Shot("report", "GET", "/v1/reports/funnel?group_by=source", b"", {}))
    if status != 200 or not isinstance(doc, dict):
        return [f"  funnel report: HTTP {status}"]
    return ["", "funnel report from the stream's counters (leadflow report funnel):"] + [
        "  " + line for line in render_table(doc).splitlines()
    ]


PUSH_STAGES = ("mql", "sql", "opportunity", "customer")


def crm_pushes(url: str, leads: dict[str, dict], wait: float = 8.0) -> list[str]:
    """`CRM pushes: hubspot N, ...` for the demo's qualified leads (waits briefly: pushes are asynchronous)."""
    qualified = {i: lead for i, lead in leads.items() if lead.get("lifecycle_stage") in PUSH_STAGES}
    deadline = time.monotonic() + wait
    while qualified and time.monotonic() < deadline and not all(lead.get("crm") for lead in qualified.values()):
        time.sleep(0.5)
        for lead_id in [i for i, lead in qualified.items() if not lead.get("crm")]:
            status, lead, _ = _send(url, Shot("lookup", "GET", f"/v1/leads/{quote(lead_id, safe='')}", b"", {}))
            if status == 200 and isinstance(lead, dict):
                qualified[lead_id] = lead
    latest = {**leads, **qualified}
    pushed = Counter(target for lead in latest.values() for target in (lead.get("crm") or {}))
    if not qualified and not pushed:
        return []
    counts = ", ".join(f"{target} {n}" for target, n in sorted(pushed.items())) or "none yet"
    return [f"  CRM pushes: {counts} (of {len(qualified)} qualified leads)"]


def summary(tallies: dict[str, Tally]) -> str:
    lines = [
        "",
        "demo summary",
        f"  {'source':<22}{'sent':>5}{'new':>6}{'merged':>8}{'repeat':>8}{'bot':>5}  refused / notes",
    ]
    for source, t in sorted(tallies.items()):
        notes = [f"{reason} ×{count}" for reason, count in sorted(t.rejected.items())]
        notes += [f"{note} ×{count}" for note, count in sorted(t.notes.items())]
        counts = f"{t.received:>5}{t.new:>6}{t.merged:>8}{t.repeated:>8}{t.blocked:>5}"
        lines.append(f"  {source:<22}{counts}  {'; '.join(notes) or '-'}")
    return "\n".join(lines)
