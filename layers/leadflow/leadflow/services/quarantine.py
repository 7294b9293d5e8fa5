"""A signed lead is never lost to validation: what a provider signed but LeadFlow refuses is quarantined.

A delivery that passed its provider's signature check and then fails schema or business validation will
never pass on a retry, so it is stored in the quarantine (`leadflow.store.quarantine`: the verified body,
the reason as field paths and messages, TTL `LEADFLOW_QUARANTINE_TTL_DAYS`, default 30) and the provider is
answered 2xx once the item is durable; `leadflow quarantine replay` runs it through capture again after a
mapping or schema fix. Unsigned senders (website forms, `hubspot-forms`) are not quarantined: a browser is
told what to fix (422).

Pointer-style providers (Meta, LinkedIn, TikTok): a delivery whose envelope the schema refuses is
quarantined like any other; a lead fetched from the platform's API that fails validation is quarantined as
its pointer (no personal data: a replay queues the pointer again and the fetch re-reads the platform, which
holds the lead for longer than the quarantine keeps it). The fetch dead-letter queue keeps what a retry or
an operator can fix on the platform side (API errors, credentials, exhausted retries); validation failures
are a mapping question, listed and replayed with every other source's.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from leadflow.config import settings
from leadflow.domain import normalise as n
from leadflow.domain.attribution import iso
from leadflow.domain.identity import identity_keys
from leadflow.domain.model import LeadInput
from leadflow.errors import FieldError, LeadFlowError, ValidationFailed
from leadflow.observability import logger, metrics
from leadflow.services.capture import capture_lead
from leadflow.sources import webhook_source
from leadflow.store import quarantine as store
from leadflow.web import Request

MAX_REASONS = 50
_PARSED_BODY = '{"parsed_body":true}'  # `verified` was the parsed body itself (google-ads): re-read on replay


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _reason(error: ValidationFailed) -> list[dict[str, str]]:
    """Field paths and rule messages (they never echo a submitted value)."""
    return [e.as_dict() for e in error.errors[:MAX_REASONS]]


def _keys(inputs: list[LeadInput]) -> list[str]:
    """The normalised identity keys a refused submission still yields, so an erasure request can find it."""
    keys: list[str] = []
    for inp in inputs:
        email, _ = n.normalise_email(inp.fields.get("email"))
        country = n.normalise_country(inp.fields.get("country"))
        region = country if country and len(country) == 2 else settings().default_phone_region
        phone, _ = n.normalise_phone(inp.fields.get("phone"), region)
        keys += identity_keys(email, phone, inp.external_ids)
    return list(dict.fromkeys(keys))


def _stored_body(source: ModuleType, request: Request, verified: Any) -> tuple[bytes, str | None]:
    """The body kept for replay and what `verify` returned; credentials a body carries are dropped."""
    if isinstance(verified, dict):  # the provider authenticates with a key inside the body (google-ads)
        secret_fields = set(getattr(source, "CREDENTIAL_FIELDS", ()))
        document = {k: v for k, v in verified.items() if k not in secret_fields}
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)  # no bigger than it came
        return text.encode("utf-8", "surrogatepass"), _PARSED_BODY
    return request.body, json.dumps({"value": verified})


def _verified_for_replay(record: store.Quarantined) -> Any:
    if record.verified == _PARSED_BODY:
        return json.loads((record.body or b"{}").decode("utf-8", "surrogatepass"))
    return json.loads(record.verified or '{"value": null}')["value"]


def _count(provider: str, value: int = 1) -> None:
    with single_metric(name="Quarantined", unit=MetricUnit.Count, value=value, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="provider", value=provider)


def _capture(source: ModuleType, request: Request, verified: Any) -> tuple[dict, list[LeadInput], list]:
    """Parse and capture a verified delivery: (answer, refused inputs, validation errors).

    Raises ValidationFailed when the delivery as a whole is refused (its envelope or mapping); a refused
    lead among several is reported and the others are captured.
    """
    if hasattr(source, "parse_pointers"):
        from leadflow.services.fetch import enqueue_pointers  # pointer-style providers only

        return {"received": enqueue_pointers(source.NAME, source.parse_pointers(request, verified))}, [], []
    answers, refused, errors = [], [], []
    for lead in source.parse(request, verified):
        try:
            answers.append(capture_lead(lead))
        except ValidationFailed as error:
            refused.append(lead)
            errors.append(error)
    return {"received": len(answers), "leads": answers}, refused, errors


def accept_signed_delivery(source: ModuleType, request: Request, verified: Any, now: datetime | None = None) -> dict:
    """Capture a delivery whose signature was verified; what validation refuses is quarantined (2xx body).

    The answer is returned only once every lead is stored and every refusal is durable in the quarantine;
    a store failure raises (503), so the provider retries and nothing is acknowledged.
    """
    try:
        answer, refused, errors = _capture(source, request, verified)
    except ValidationFailed as error:  # the delivery as a whole (envelope or mapping)
        answer = {"received": 0} if hasattr(source, "parse_pointers") else {"received": 0, "leads": []}
        refused, errors = [], [error]
    if not errors:
        return answer
    reason = [r for error in errors for r in _reason(error)][:MAX_REASONS]
    body, verified_json = _stored_body(source, request, verified)
    # One item per delivery: named by its delivery key when parsing got that far, else by its body (a
    # provider's retry resends the same bytes), so a repeat is quarantined once.
    delivery_key = next((lead.event_key for lead in refused if lead.event_key), None)
    identity = delivery_key.encode() if delivery_key else body
    digest = hashlib.sha256(f"{source.NAME}\n".encode() + identity).hexdigest()[:32]
    at = _now(now)
    stored = store.put(
        store.Quarantined(
            quarantine_id=digest,
            source=source.NAME,
            kind="delivery",
            reason=reason,
            received_at=iso(at),
            expires_at=int((at + timedelta(days=settings().quarantine_ttl_days)).timestamp()),
            delivery_key=delivery_key,
            body=body,
            verified=verified_json,
            identity_keys=_keys(refused),
        )
    )
    _quarantined(source.NAME, digest, reason, stored)
    quarantined = max(1, len(refused))
    return {**answer, "received": answer["received"] + quarantined, "quarantined": quarantined}


def quarantine_pointer(provider: str, pointer: dict, error: ValidationFailed, now: datetime | None = None) -> None:
    """A lead fetched for a pointer failed validation: keep the pointer (no personal data) for replay."""
    at = _now(now)
    event = str(pointer.get("event_key") or pointer.get("id") or json.dumps(pointer, sort_keys=True))
    digest = hashlib.sha256(f"{provider}\npointer\n{event}".encode()).hexdigest()[:32]
    reason = _reason(error)
    stored = store.put(
        store.Quarantined(
            quarantine_id=digest,
            source=provider,
            kind="pointer",
            reason=reason,
            received_at=iso(at),
            expires_at=int((at + timedelta(days=settings().quarantine_ttl_days)).timestamp()),
            delivery_key=pointer.get("event_key"),
            pointer=pointer,
        )
    )
    _quarantined(provider, digest, reason, stored)


def _quarantined(provider: str, quarantine_id: str, reason: list[dict[str, str]], new: bool) -> None:
    if new:  # a repeat of a delivery already in the quarantine is acknowledged again, not counted again
        _count(provider)
    logger.warning(
        "delivery quarantined" if new else "quarantined delivery repeated",
        extra={"provider": provider, "quarantine_id": quarantine_id, "fields": sorted({r["field"] for r in reason})},
    )


def list_quarantine() -> list[dict]:
    return store.list_items()


def replay(quarantine_id: str, now: datetime | None = None) -> dict:
    """Run one quarantined delivery through capture again (after a mapping or schema fix).

    Returns `{"quarantine_id", "outcome", ...}`: `captured` (the item is removed; `leads` are the answers),
    `requeued` (a pointer went back to the fetch queue; the item is removed and a lead that still fails is
    quarantined again by the fetch), `quarantined` (it still fails: the item stays with the new `reason`),
    or `missing`.
    """
    record = store.get(quarantine_id)
    if record is None:
        return {"quarantine_id": quarantine_id, "outcome": "missing"}
    at = iso(_now(now))
    if record.kind == "pointer":
        from leadflow.services.fetch import enqueue_pointers

        enqueue_pointers(record.source, [record.pointer or {}])
        store.remove(quarantine_id, record.identity_keys)
        return {"quarantine_id": quarantine_id, "outcome": "requeued", "source": record.source}
    source = webhook_source(record.source)
    request = Request(
        method="POST",
        path=f"/v1/webhooks/{record.source}",
        headers={"content-type": "application/json"},
        query={},
        raw_query="",
        path_params={"provider": record.source},
        cookies={},
        body=record.body or b"",
    )
    try:
        answer, _refused, errors = _capture(source, request, _verified_for_replay(record))
    except ValidationFailed as error:
        answer, errors = {}, [error]
    except LeadFlowError as error:
        if error.status >= 500:
            raise  # the store or a dependency is down: nothing changed, run the replay again
        # e.g. the body no longer parses with this code: keep it and say why (kind and title, never values)
        answer, errors = {}, [ValidationFailed([FieldError("body", f"{error.kind}: {error.title}")])]
    if errors:
        reason = [r for error in errors for r in _reason(error)][:MAX_REASONS]
        store.record_replay(quarantine_id, reason, at)
        return {"quarantine_id": quarantine_id, "outcome": "quarantined", "reason": reason}
    store.remove(quarantine_id, record.identity_keys)
    return {"quarantine_id": quarantine_id, "outcome": "captured", "source": record.source, **answer}
