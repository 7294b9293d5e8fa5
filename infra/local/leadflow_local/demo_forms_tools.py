"""Demo traffic from form tools and lead-form ads: Typeform, Tally, Webflow, HubSpot forms, Google Ads.

`shots(url, rng)` returns one correctly signed delivery per provider (signed with the development secrets
of infra/local/secrets.json, exactly as each platform documents it), a redelivery of some of them, and a
tampered delivery that must be refused. Some people are the demo's website visitors (same emails as
demo.PEOPLE), so they merge into their existing leads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from typing import Any

from leadflow_local.demo import PEOPLE, SECRETS, Shot

JSON = {"content-type": "application/json"}


def _secret(name: str) -> Any:
    return json.loads(SECRETS.read_text())[name]


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _typeform(person: tuple, n: int, now: float) -> tuple[bytes, dict[str, str]]:
    first, last, email, phone, company, title, _country = person
    body = json.dumps(
        {
            "event_id": f"01DEMO{n:020d}",
            "event_type": "form_response",
            "form_response": {
                "form_id": "DeMo01",
                "token": f"demo-typeform-{n}",
                "landed_at": _iso(now - 90),
                "submitted_at": _iso(now),
                "hidden": {"utm_source": "linkedin", "utm_medium": "paid_social", "utm_campaign": "abm-enterprise"},
                "definition": {"id": "DeMo01", "title": "Book a demo", "fields": []},
                "answers": [
                    {"type": "text", "text": first, "field": {"id": "a1", "ref": "first_name", "type": "short_text"}},
                    {"type": "text", "text": last, "field": {"id": "a2", "ref": "last_name", "type": "short_text"}},
                    {"type": "email", "email": email, "field": {"id": "a3", "ref": "email", "type": "email"}},
                    {
                        "type": "phone_number",
                        "phone_number": phone,
                        "field": {"id": "a4", "ref": "phone", "type": "phone_number"},
                    },
                    {"type": "text", "text": company, "field": {"id": "a5", "ref": "company", "type": "short_text"}},
                    {"type": "text", "text": title, "field": {"id": "a6", "ref": "job_title", "type": "short_text"}},
                    {
                        "type": "boolean",
                        "boolean": True,
                        "field": {"id": "a7", "ref": "consent_email", "type": "legal"},
                    },
                ],
            },
        }
    ).encode()
    signature = base64.b64encode(_mac(_secret("webhooks/typeform"), body)).decode()
    return body, {**JSON, "typeform-signature": f"sha256={signature}"}


def _tally(person: tuple, n: int, now: float) -> tuple[bytes, dict[str, str]]:
    first, last, email, _phone, company, _title, country = person
    body = json.dumps(
        {
            "eventId": f"demo-tally-event-{n}",
            "eventType": "FORM_RESPONSE",
            "createdAt": _iso(now),
            "data": {
                "responseId": f"demo-tally-{n}",
                "submissionId": f"demo-tally-{n}",
                "respondentId": f"resp{n}",
                "formId": "demoTl",
                "formName": "Newsletter + webinar",
                "createdAt": _iso(now),
                "fields": [
                    {"key": "q1", "label": "First name", "type": "INPUT_TEXT", "value": first},
                    {"key": "q2", "label": "Last name", "type": "INPUT_TEXT", "value": last},
                    {"key": "q3", "label": "Work email", "type": "INPUT_EMAIL", "value": email},
                    {"key": "q4", "label": "Company", "type": "INPUT_TEXT", "value": company},
                    {"key": "q5", "label": "Country", "type": "INPUT_TEXT", "value": country},
                    {
                        "key": "q6",
                        "label": "Topics",
                        "type": "CHECKBOXES",
                        "value": ["t1", "t3"],
                        "options": [
                            {"id": "t1", "text": "Attribution"},
                            {"id": "t2", "text": "Scoring"},
                            {"id": "t3", "text": "CRM sync"},
                        ],
                    },
                    {
                        "key": "q7",
                        "label": "Hidden fields",
                        "type": "HIDDEN_FIELDS",
                        "value": {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "webinar-dec"},
                    },
                ],
            },
        }
    ).encode()
    return body, {**JSON, "tally-signature": base64.b64encode(_mac(_secret("webhooks/tally"), body)).decode()}


def _webflow(person: tuple, n: int, now: float) -> tuple[bytes, dict[str, str]]:
    first, last, email, phone, company, _title, _country = person
    body = json.dumps(
        {
            "triggerType": "form_submission",
            "payload": {
                "name": "Pricing question",
                "siteId": "demo-site",
                "data": {
                    "Name": f"{first} {last}",
                    "Your work email": email,
                    "Phone": phone,
                    "Where do you work?": company,
                    "Budget (USD)": "15000",
                    "utm_source": "bing",
                    "utm_medium": "cpc",
                    "msclkid": f"demo-msclkid-{n}",
                },
                "submittedAt": _iso(now),
                "id": f"demo-webflow-{n}",
                "formId": "demo-form",
            },
        }
    ).encode()
    timestamp = str(int(time.time() * 1000))
    signature = _mac(_secret("webhooks/webflow"), timestamp.encode() + b":" + body).hex()
    return body, {**JSON, "x-webflow-timestamp": timestamp, "x-webflow-signature": signature}


def _hubspot(person: tuple, n: int, url: str) -> tuple[bytes, dict[str, str]]:
    first, last, email, _phone, company, title, _country = person
    body = json.dumps(
        {
            "submittedAt": str(int(time.time() * 1000)),
            "fields": [
                {"objectTypeId": "0-1", "name": "email", "value": email},
                {"objectTypeId": "0-1", "name": "firstname", "value": first},
                {"objectTypeId": "0-1", "name": "lastname", "value": last},
                {"objectTypeId": "0-1", "name": "jobtitle", "value": title},
                {"objectTypeId": "0-2", "name": "name", "value": company},
            ],
            "context": {
                "hutk": hashlib.md5(email.encode()).hexdigest(),  # noqa: S324 - a demo cookie value, not security
                "pageUri": f"https://www.example.com/ebook?utm_source=google&utm_medium=cpc&gclid=demo-gclid-{n}",
                "pageName": "Download the e-book",
            },
            "legalConsentOptions": {
                "consent": {
                    "consentToProcess": True,
                    "text": "I agree to the processing of my data.",
                    "communications": [{"value": True, "subscriptionTypeId": 1, "text": "Send me news."}],
                }
            },
        }
    ).encode()
    return body, {**JSON, "origin": url}


def _google_ads(person: tuple, n: int, rng: random.Random, now: float) -> tuple[bytes, dict[str, str]]:
    first, last, email, phone, company, title, country = person
    body = json.dumps(
        {
            "lead_id": f"demo-google-lead-{n}",
            "user_column_data": [
                {"column_name": "Full Name", "string_value": f"{first} {last}", "column_id": "FULL_NAME"},
                {"column_name": "User Email", "string_value": email, "column_id": "EMAIL"},
                {"column_name": "User Phone", "string_value": phone, "column_id": "PHONE_NUMBER"},
                {"column_name": "Company Name", "string_value": company, "column_id": "COMPANY_NAME"},
                {"column_name": "Job Title", "string_value": title, "column_id": "JOB_TITLE"},
                {"column_name": "Country", "string_value": country, "column_id": "COUNTRY"},
            ],
            "api_version": "1.0",
            "form_id": 40000000000 + n,
            "campaign_id": 20000000000 + rng.randint(1, 9),
            "adgroup_id": 30000000000 + rng.randint(1, 99),
            "creative_id": 50000000000 + rng.randint(1, 999),
            "google_key": _secret("webhooks/google-ads")["google_key"],
            "is_test": False,
            "gcl_id": f"demo-gcl-{n}",
            "lead_stage": "SUBMITTED",
            "lead_submit_time": _iso(now),
        }
    ).encode()
    return body, dict(JSON)


def shots(url: str, rng: random.Random) -> list[Shot]:
    """One signed delivery per provider, redeliveries and a tampered delivery per signed scheme."""
    now = time.time()
    people = rng.sample(PEOPLE, 5)
    out: list[Shot] = []
    builders = [
        ("typeform", lambda p, n: _typeform(p, n, now)),
        ("tally", lambda p, n: _tally(p, n, now)),
        ("webflow", lambda p, n: _webflow(p, n, now)),
        ("hubspot-forms", lambda p, n: _hubspot(p, n, url)),
        ("google-ads", lambda p, n: _google_ads(p, n, rng, now)),
    ]
    for n, ((provider, build), person) in enumerate(zip(builders, people, strict=True)):
        path = f"/v1/webhooks/{provider}"
        body, headers = build(person, n)
        out.append(Shot(provider, "POST", path, body, headers))
        # the platform retries a delivery it already made (HubSpot: a double click within the hour)
        out.append(Shot(provider, "POST", path, body, headers, kind="redelivery"))
    # deliveries that must be refused: a body changed after signing, a foreign origin, a wrong google_key
    for provider, build in builders[:3]:
        body, headers = build(PEOPLE[-1], 90)
        out.append(Shot(provider, "POST", f"/v1/webhooks/{provider}", body.replace(b"@", b"+evil@", 1), headers, "bad"))
    body, headers = _hubspot(PEOPLE[-1], 91, url)
    out.append(
        Shot(
            "hubspot-forms",
            "POST",
            "/v1/webhooks/hubspot-forms",
            body,
            {**JSON, "origin": "https://phishing.example.net"},
            "bad",
        )
    )
    body, headers = _google_ads(PEOPLE[-1], 92, rng, now)
    forged = body.replace(json.dumps(_secret("webhooks/google-ads")["google_key"]).encode(), b'"guessed-key"')
    out.append(Shot("google-ads", "POST", "/v1/webhooks/google-ads", forged, headers, "bad"))
    return out
