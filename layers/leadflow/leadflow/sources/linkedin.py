"""`linkedin`: LinkedIn Lead Sync notifications (pointer-style: the lead form response is fetched).

Formats (learn.microsoft.com/en-us/linkedin/shared/api-guide/webhook-validation and
learn.microsoft.com/en-us/linkedin/marketing/lead-sync/leadsync):
- Validation: `GET ?challengeCode=<uuid>` is answered 200 with JSON
  `{"challengeCode", "challengeResponse": hex(HMAC-SHA256(key=clientSecret, msg=challengeCode))}` within
  3 s; LinkedIn re-validates about every 2 hours. Nothing but the secret is read to answer it. Only a UUID is
  answered (anything else is 400 before any MAC is computed): the same secret signs notifications, so an
  answer for an arbitrary string would be a signature oracle.
- Notification: `X-LI-Signature: hex(HMAC-SHA256(key=clientSecret, msg="hmacsha256=" + raw body))`; the
  `hmacsha256=` literal is part of the signed string, not of the header. There is no timestamp to check.
- Body `{type: "LEAD_ACTION", leadGenFormResponse: <URN>, owner, associatedEntity, leadGenForm, leadType,
  leadAction: CREATED|DELETED, occurredAt}`. CREATED names a form response to fetch; DELETED is
  acknowledged and nothing is created (LinkedIn's own deletion does not erase the person here: erasure is
  an operator request, `DELETE /v1/leads/{id}`).
- LinkedIn may deliver a notification several times: the response URN is the delivery key and the
  external id, so a repeat captures nothing new.

Secret `webhooks/linkedin` (`client_secret`, `access_token`). API base `LEADFLOW_LINKEDIN_API_URL`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from leadflow import schemas
from leadflow.domain.model import LeadInput
from leadflow.errors import FieldError, MalformedBody, SignatureInvalid, ValidationFailed
from leadflow.secrets import secret_field, secret_list
from leadflow.sources import http
from leadflow.sources.base import constant_time_equal, event_key, hmac_sha256, lead_input_from_flat, parse_time
from leadflow.web import Request, json_object, response

NAME = "linkedin"
SCHEMA = "linkedin.v1.json"
LEAD_SCHEMA = "lead_input.v1.json"
SECRET = "webhooks/linkedin"
# LinkedIn-Version (YYYYMM) of the versioned Marketing APIs; LinkedIn sunsets a version after about a year.
API_VERSION = os.environ.get("LEADFLOW_LINKEDIN_VERSION", "202609")
# LinkedIn sends a UUID (canonical 8-4-4-4-12 hex). Nothing else is answered: the challenge response is an
# HMAC under the same client secret that signs deliveries (over "hmacsha256=" + body), so answering any
# other string would sign a forged delivery for whoever asks (see test_linkedin_oracle in tests/security).
CHALLENGE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)

# Predefined questions of a LinkedIn lead gen form (leadForms `content.questions[].predefinedField`).
PREDEFINED_FIELDS = {
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "WORK_EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "WORK_PHONE_NUMBER": "phone",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "job_title",
    "COUNTRY": "country",
    "COMPANY_SIZE": "company_size",
    "INDUSTRY": "industry",
}


def _client_secret() -> bytes:
    """The current client secret (the first of a rotation list)."""
    return secret_list(SECRET, "client_secret")[0].encode()


# -------------------------------------------------------------------------------------- validation GET
def handshake(request: Request) -> dict:
    code = request.query.get("challengeCode", "")
    if not CHALLENGE.fullmatch(code):
        raise MalformedBody("challengeCode is missing or not a UUID.")
    answer = hmac_sha256(_client_secret(), code.encode("utf-8", "surrogatepass")).hex()
    return response(200, {"challengeCode": code, "challengeResponse": answer})


# -------------------------------------------------------------------------------------- notification POST
def verify(request: Request, now: float | None = None) -> None:
    offered = (request.header("x-li-signature") or "").strip().lower()
    if not offered:
        raise SignatureInvalid("The X-LI-Signature header is missing.")
    matched = False
    for secret in secret_list(SECRET, "client_secret"):  # current and, while rotating, previous secrets
        matched |= constant_time_equal(hmac_sha256(secret.encode(), b"hmacsha256=" + request.body).hex(), offered)
    if not matched:
        raise SignatureInvalid("The X-LI-Signature does not match.")


def parse_pointers(request: Request, verified: None) -> list[dict]:
    document = json_object(request, SCHEMA)
    if document["leadAction"] != "CREATED":
        return []  # DELETED: acknowledged; nothing to fetch or create
    urn = document["leadGenFormResponse"]
    return [
        {
            "id": urn,
            "event_key": event_key(NAME, urn),
            "form": document.get("leadGenForm"),
            "lead_type": document.get("leadType"),
            "occurred_at": document.get("occurredAt"),
        }
    ]


# -------------------------------------------------------------------------------------- fetch
def response_path(urn: str) -> str:
    """`/rest/leadFormResponses/{id}`: the URN's id part, URL-encoded as Rest.li 2.0 wants path keys."""
    response_id = urn.rsplit(":", 1)[-1] if urn.startswith("urn:li:") else urn
    return "/rest/leadFormResponses/" + quote(response_id, safe="")


def form_id(form_urn: Any) -> str | None:
    """`urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123,1)` or `urn:li:leadGenForm:123` → `123`."""
    if not isinstance(form_urn, str) or not form_urn:
        return None
    text = form_urn.split("leadGenForm:", 1)[1] if "leadGenForm:" in form_urn else form_urn
    return text.split(",", 1)[0].rstrip(")") or None


def _get_json(path: str) -> Any:
    headers = {
        "Authorization": "Bearer " + secret_field(SECRET, "access_token"),
        "LinkedIn-Version": API_VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }
    return http.request_json(NAME, "GET", http.base_url(NAME) + path, headers=headers)


@lru_cache(maxsize=256)
def _form_questions(form: str) -> tuple[tuple[str, str], ...]:
    """questionId → predefinedField (custom questions: their name), fetched once per form and process."""
    document = _get_json("/rest/leadForms/" + quote(form, safe=""))
    content = document.get("content") if isinstance(document, dict) else None
    questions = content.get("questions") if isinstance(content, dict) else None
    pairs = []
    for q in questions if isinstance(questions, list) else []:
        if isinstance(q, dict) and q.get("questionId") is not None:
            pairs.append((str(q["questionId"]), str(q.get("predefinedField") or q.get("name") or "")))
    return tuple(pairs)


def fetch(pointer: dict) -> LeadInput:
    """GET the lead form response, then (cached) the form's questions, and map the answers."""
    document = _get_json(response_path(str(pointer["id"])))
    if not isinstance(document, dict):
        raise ValidationFailed([FieldError("body", "the lead form response is not an object")])
    form = form_id(document.get("versionedLeadGenFormUrn")) or form_id(pointer.get("form"))
    questions = dict(_form_questions(form)) if form else {}
    return lead_from_response(document, questions, pointer)


# -------------------------------------------------------------------------------------- mapping (pure)
def _answer_value(details: Any) -> Any:
    if not isinstance(details, dict):
        return None
    if isinstance(details.get("textQuestionAnswer"), dict):
        return details["textQuestionAnswer"].get("answer")
    if isinstance(details.get("multipleChoiceAnswer"), dict):
        options = details["multipleChoiceAnswer"].get("options")
        if isinstance(options, list) and all(isinstance(o, str | int) for o in options):
            return str(options[0]) if len(options) == 1 else [str(o) for o in options]
    return None


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _attribute_name(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9_.:-]+", "_", name.strip().lower()).strip("_") or "question")[:64]


def lead_from_response(document: dict, questions: dict[str, str], pointer: dict) -> LeadInput:
    """A leadFormResponses document and its form's questions as a LeadInput (validated like any lead).

    Predefined questions map to lead fields, custom questions go to `attributes` under their name, consent
    checkboxes to `attributes.linkedin_consent_<id>`; form, campaign, creative, owner and lead type are
    kept as attributes for reporting. The response URN is the external id and the delivery key.
    """
    flat: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    origins: dict[str, str] = {}
    form_response = _obj(document.get("formResponse"))
    answers = form_response.get("answers") if isinstance(form_response.get("answers"), list) else []
    for index, answer in enumerate(answers):
        if not isinstance(answer, dict):
            continue
        value = _answer_value(answer.get("answerDetails"))
        if value in (None, "", []) or not isinstance(value, str | list):
            continue
        question_id = str(answer.get("questionId"))[:40]
        question = questions.get(question_id) or f"question_{question_id}"
        target = PREDEFINED_FIELDS.get(question)
        if target and target not in flat and isinstance(value, str):
            flat[target] = value
            origins[target] = f"formResponse.answers.{index}"
        else:
            name = _attribute_name(question)
            attributes[name] = value
            origins[f"attributes.{name}"] = f"formResponse.answers.{index}"
    consents = form_response.get("consentResponses")
    for consent in consents if isinstance(consents, list) else []:
        if isinstance(consent, dict) and isinstance(consent.get("consentId"), int | str):
            attributes[_attribute_name(f"linkedin_consent_{consent['consentId']}")] = consent.get("accepted") is True
    metadata = _obj(_obj(document.get("leadMetadata")).get("sponsoredLeadMetadata"))
    owner = _obj(document.get("owner"))
    context = {
        "linkedin_form": document.get("versionedLeadGenFormUrn") or pointer.get("form"),
        "linkedin_campaign": metadata.get("campaign"),
        "linkedin_creative": _obj(document.get("associatedEntity")).get("associatedCreative"),
        "linkedin_owner": owner.get("sponsoredAccount") or owner.get("organization"),
        "linkedin_lead_type": document.get("leadType") or pointer.get("lead_type"),
    }
    attributes.update({k: v for k, v in context.items() if isinstance(v, str) and v})
    if attributes:
        flat["attributes"] = attributes
    schemas.check(LEAD_SCHEMA, flat, rename=origins)
    urn = str(pointer["id"])
    inp = lead_input_from_flat(flat, source=NAME, event_key=pointer.get("event_key") or event_key(NAME, urn))
    inp.external_ids = [(NAME, urn)]
    inp.occurred_at = parse_time(document.get("submittedAt")) or parse_time(pointer.get("occurred_at"))
    inp.is_test = bool(document.get("testLead"))
    return inp
