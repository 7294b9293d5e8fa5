"""Reading a table's DynamoDB stream through the dynamodbstreams API (as Lambda's poller does).

moto's own stream→Lambda mappings ignore filters, batching and failures, so the local runtime reads the
stream itself. This module holds the shard reader; `ActivityPrinter` turns lead changes into the
terminal lines of `leadflow up` (ids, sources and stages only: never PII).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class StreamReader:
    """Follows every shard of one stream from LATEST (or TRIM_HORIZON) and hands batches of records on."""

    def __init__(self, client: Any, stream_arn: str, start: str = "TRIM_HORIZON") -> None:
        self._client = client
        self._arn = stream_arn
        self._start = start
        self._iterators: dict[str, str | None] = {}

    def _refresh_shards(self) -> None:
        description = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                response = self._client.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=self._start
                )
                self._iterators[shard_id] = response["ShardIterator"]

    def poll(self, limit: int = 100) -> list[dict]:
        self._refresh_shards()
        records: list[dict] = []
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            response = self._client.get_records(ShardIterator=iterator, Limit=limit)
            records.extend(response.get("Records", []))
            self._iterators[shard_id] = response.get("NextShardIterator")
        return records


def _s(image: dict, name: str) -> str | None:
    value = image.get(name) or {}
    return value.get("S") or value.get("N")


def touch_sources(records: list[dict]) -> dict[str, str]:
    """lead id → source of the touch written with it (a lead's latest_touch keeps the newest one only)."""
    sources = {}
    for record in records:
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        if record.get("eventName") == "INSERT" and _s(image, "entity") == "touch" and _s(image, "source"):
            sources[_s(image, "lead_id") or ""] = _s(image, "source") or ""
    return sources


def _score_line(lead_id: str | None, new: dict, old: dict) -> str | None:
    """`scored … grade B total 62` when the stored score changed (ids and numbers only)."""
    score, before = (new.get("score") or {}).get("M") or {}, (old.get("score") or {}).get("M") or {}
    grade = _s(score, "grade")
    if not grade or (_s(score, "total"), grade) == (_s(before, "total"), _s(before, "grade")):
        return None
    return (
        f"scored    lead {lead_id} grade {grade} total {_s(score, 'total')} "
        f"(fit {_s(score, 'fit')}, behaviour {_s(score, 'behaviour')})"
    )


def describe(record: dict, sources: dict[str, str] | None = None) -> str | None:
    """The terminal line(s) for a lead change, or None for other items."""
    dynamodb = record.get("dynamodb") or {}
    new, old = dynamodb.get("NewImage") or {}, dynamodb.get("OldImage") or {}
    image = new or old
    if _s(image, "entity") == "history" and _s(image, "kind") == "push" and record["eventName"] == "INSERT":
        return _push_line(new)
    if _s(image, "entity") == "history" and _s(image, "kind") == "conversion" and record["eventName"] == "INSERT":
        return _conversion_line(new)
    if _s(image, "entity") == "history" and _s(image, "kind") == "journey" and record.get("eventName") == "INSERT":
        return _journey_line(image)
    if _s(image, "entity") == "history" and _s(image, "kind") == "owner" and record.get("eventName") == "INSERT":
        return _owner_line(image)
    if _s(image, "entity") == "history" and _s(image, "kind") == "crm" and record.get("eventName") == "INSERT":
        return _crm_line(image)
    if _s(image, "entity") != "lead":
        return None
    lead_id = _s(image, "lead_id")
    stage = _s(image, "lifecycle_stage")
    source = (sources or {}).get(lead_id or "") or _s((image.get("latest_touch") or {}).get("M") or {}, "source")
    lines = []
    if record["eventName"] == "INSERT":
        reasons = [r.get("S") for r in (new.get("disqualified_reasons") or {}).get("L", [])]
        extra = f" (disqualified: {', '.join(reasons)})" if reasons else ""
        lines.append(f"captured  lead {lead_id} from {source}, stage {stage}{extra}")
    elif record["eventName"] == "MODIFY":
        if "erasing" in new:  # an erasure started: its REMOVE prints the line
            return None
        if _only_journey_changed(old, new):
            journey = (new.get("journey") or {}).get("M") or {}
            status, next_at = _s(journey, "status"), _s(journey, "next_step_at")
            if status in ("active", "waiting_event") and next_at:
                waiting = _s(journey, "waiting_for")
                what = f"waits for {waiting} until" if status == "waiting_event" and waiting else "next touch"
                return f"journey   lead {lead_id} in {_s(journey, 'name')}: {what} {next_at} (journey time)"
            return None
        if _s(new, "touch_count") != _s(old, "touch_count"):
            lines.append(f"merged    lead {lead_id} ← {source}, touches {_s(new, 'touch_count')}, stage {stage}")
        if "suppressed" in new and "suppressed" not in old:
            reason = _s((new.get("suppressed") or {}).get("M") or {}, "reason")
            lines.append(f"suppressed lead {lead_id} ({reason})")
    else:
        return f"erased    lead {lead_id}"
    scored = _score_line(lead_id, new, old)
    if scored:
        lines.append(scored)
    if record["eventName"] == "MODIFY" and stage != _s(old, "lifecycle_stage"):
        if stage == "mql":
            lines.append(f"mql       lead {lead_id} qualified (marketing-qualified lead)")
        else:
            lines.append(f"stage     lead {lead_id} {_s(old, 'lifecycle_stage')} → {stage}")
    return "\n".join(lines) or None


def _push_line(image: dict) -> str | None:
    """`pushed hubspot lead <id> …`, a retry or a dead letter of a CRM push (ids, codes: no personal data)."""
    detail = (image.get("detail") or {}).get("M") or {}
    lead_id, target, outcome = _s(image, "lead_id"), _s(detail, "target"), _s(detail, "outcome")
    version = _s(detail, "version")
    if outcome == "pushed":
        crm_id = _s(detail, "crm_id")
        return f"pushed {target} lead {lead_id} v{version}" + (f" → {crm_id}" if crm_id else "")
    if outcome == "retry":
        return f"retry  {target} lead {lead_id} v{version} in {_s(detail, 'delay_s')} s ({_s(detail, 'reason')})"
    if outcome == "dead_letter":
        return (
            f"failed {target} lead {lead_id} v{version}: {_s(detail, 'reason')} (leadflow dlq list --target {target})"
        )
    return None


def _owner_line(image: dict) -> str:
    """`owner     lead <id> → ava (rule north_america, team na_sales)`; a reassignment says why; an acceptance."""
    detail = (image.get("detail") or {}).get("M") or {}
    lead_id, owner = _s(image, "lead_id"), _s(detail, "owner")
    if "accepted" in detail:
        return f"accepted  lead {lead_id} by {owner}"
    team = f", team {_s(detail, 'team')}" if _s(detail, "team") else ""
    line = f"owner     lead {lead_id} → {owner} (rule {_s(detail, 'rule')}{team})"
    return line + (f": {_s(detail, 'reason')}" if _s(detail, "previous_owner") else "")


def _conversion_line(image: dict) -> str | None:
    """`conversion google-ads lead <id> sql (gclid)`, a retry, a skip or a dead letter (ids and codes only)."""
    detail = (image.get("detail") or {}).get("M") or {}
    lead_id, platform, outcome = _s(image, "lead_id"), _s(detail, "platform"), _s(detail, "outcome")
    stage, click = _s(detail, "stage"), _s(detail, "click_id")
    if outcome == "sent":
        return f"conversion {platform} lead {lead_id} {stage}" + (f" ({click})" if click else "")
    if outcome == "retry":
        return (
            f"conversion {platform} lead {lead_id} {stage}: retry in {_s(detail, 'delay_s')} s ({_s(detail, 'reason')})"
        )
    if outcome in ("dead_letter", "skipped"):
        hint = f" (leadflow dlq list --target {platform})" if outcome == "dead_letter" else ""
        return f"conversion {platform} lead {lead_id} {stage} {outcome.replace('_', ' ')}: {_s(detail, 'reason')}{hint}"
    return None


def _crm_line(image: dict) -> str | None:
    """CRM feedback: `crm sql`, `won`, `recycled → journey X`, ... (CRM ids, stages and rule ids only)."""
    detail = (image.get("detail") or {}).get("M") or {}
    lead_id, outcome = _s(image, "lead_id"), _s(detail, "outcome")
    where = " ".join(p for p in (_s(detail, "crm"), _s(detail, "object")) if p)
    if outcome == "won":
        value = f", value {_s(detail, 'value')}" if _s(detail, "value") else ""
        return f"won       lead {lead_id} ({where}{value})"
    if outcome in ("sql", "opportunity", "lost", "disqualified"):
        return f"crm {outcome:<6}lead {lead_id} → {_s(detail, 'stage')} ({where})"
    if outcome == "action":
        rule, stage = _s(detail, "rule"), _s(detail, "stage")
        if _s(detail, "journey"):
            until = f", suppressed until {_s(detail, 'suppressed_until')}" if _s(detail, "suppressed_until") else ""
            return (
                f"{stage:<9} lead {lead_id} → journey {_s(detail, 'journey')} at {_s(detail, 'journey_at')} "
                f"(journey time; rule {rule}{until})"
            )
        return f"{stage:<9} lead {lead_id} (rule {rule})"
    if outcome in ("stale", "ignored"):
        return f"crm {outcome:<6}lead {lead_id} ({where}: {_s(detail, 'why')})"
    return None


def _only_journey_changed(old: dict, new: dict) -> bool:
    ignored = {"journey", "version", "updated_at"}
    return bool(old) and {k: v for k, v in old.items() if k not in ignored} == {
        k: v for k, v in new.items() if k not in ignored
    }


def _journey_line(image: dict) -> str:
    """A journey timeline entry: a send (channel, template, variant, masked recipient), deferral, exit."""
    detail = (image.get("detail") or {}).get("M") or {}
    lead_id, outcome = _s(image, "lead_id"), _s(detail, "outcome")
    what = f"{_s(detail, 'journey')}/{_s(detail, 'touch')}" if _s(detail, "touch") else _s(detail, "journey")
    parts = [f"journey   lead {lead_id} {outcome} {what} at {_s(image, 'at')}"]
    if outcome == "sent":
        variant = f", variant {_s(detail, 'variant')}" if _s(detail, "variant") else ""
        parts.append(f"({_s(detail, 'channel')} to {_s(detail, 'to')}{variant})")
    elif _s(detail, "reason"):
        until = f" until {_s(detail, 'until')}" if _s(detail, "until") else ""
        parts.append(f"({_s(detail, 'reason')}{until})")
    return " ".join(parts)


class ActivityPrinter:
    """Polls the leads table's stream in the background and prints what happens to each lead."""

    def __init__(self, reader: StreamReader, emit: Callable[[str], None], interval: float = 0.3) -> None:
        self._reader, self._emit, self._interval = reader, emit, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lead-activity", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                records = self._reader.poll()
            except Exception as error:  # the stack is shutting down, or a transient local error
                self._emit(f"(stream read failed: {type(error).__name__})")
                continue
            sources = touch_sources(records)
            for record in records:
                text = describe(record, sources)
                for line in (text or "").splitlines():
                    self._emit(line)

    def start(self) -> ActivityPrinter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
