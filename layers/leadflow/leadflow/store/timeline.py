"""A lead's timeline: its touches, events and history entries, newest first, one page at a time.

Each kind lives under its own sort-key prefix of the lead's partition (`TOUCH#<at>#…`, `EVENT#<at>#…`,
`HIST#<at>#…`), so a page is one Query per prefix (newest first, at most `limit + 1` items each) merged by
time: the `limit` newest of the three streams are the page, because no stream can place more than `limit`
items in it. No Scan, and at most three Queries per page whatever the size of the partition.

The cursor is opaque to callers: base64url JSON `{"l": lead id, "p": {prefix: last sk served | "" when the
prefix is exhausted}}`. It is not secret (it holds positions, no data) and not signed; it is checked field by
field instead: bound to the lead in the path, each position must be a sort key of its own prefix, and the
partition key always comes from the path. An edited cursor can therefore only skip entries of the same lead,
which the operator may read in full anyway; anything malformed is a 400 (`BadRequest`), never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pynamodb.exceptions import PynamoDBException, QueryError

from leadflow.domain.model import CLICK_IDS, UTM_PARAMS
from leadflow.errors import BadRequest, StoreUnavailable
from leadflow.store.leads import _plain
from leadflow.store.models import EventItem, HistoryItem, TouchItem, lead_pk

TOUCH, EVENT, HIST = "TOUCH#", "EVENT#", "HIST#"
PREFIXES = (TOUCH, EVENT, HIST)
_MODELS = {TOUCH: TouchItem, EVENT: EventItem, HIST: HistoryItem}
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
_MAX_CURSOR = 8192
# an sk of the prefix: a time (ISO-8601-like text) then '#' and the rest (ids, kind; no control characters;
# DynamoDB caps a sort key at 1024 bytes)
_SK = re.compile(r"^(TOUCH|EVENT|HIST)#[0-9][0-9A-Za-z:.+\-]{0,40}#[^\x00-\x1f\x7f]{1,1000}$")
# event properties never shown in the timeline even if a sender put them there (personal data)
_PII_PROPERTIES = frozenset(
    {"email", "phone", "first_name", "last_name", "name", "full_name", "firstname", "lastname", "mobile"}
)


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next: str | None


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def encode_cursor(lead_id: str, positions: dict[str, str]) -> str:
    raw = json.dumps({"l": lead_id, "p": positions}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(lead_id: str, cursor: str | None) -> dict[str, str]:
    """The per-prefix positions of a cursor given for `lead_id`, or BadRequest."""
    if cursor is None or cursor == "":
        return {}
    refused = BadRequest("The cursor is not valid for this lead's timeline; start again without it.")
    if len(cursor) > _MAX_CURSOR or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if not isinstance(data, dict) or set(data) != {"l", "p"} or data["l"] != lead_id:
        raise refused
    positions = data["p"]
    if not isinstance(positions, dict) or not positions or not set(positions) <= set(PREFIXES):
        raise refused
    for prefix, sk in positions.items():
        if not isinstance(sk, str) or (sk and not (sk.startswith(prefix) and _SK.match(sk))):
            raise refused
    if len(positions) == len(PREFIXES) and all(sk == "" for sk in positions.values()):
        raise refused  # a finished timeline has no next cursor
    return positions


def _suffix(sk: str) -> str:
    return sk.split("#", 1)[1]  # "<at>#<rest>": orders like the sk within one prefix


def read_page(lead_id: str, limit: int, cursor: str | None) -> Page:
    positions = decode_cursor(lead_id, cursor)
    fetched: dict[str, list[Any]] = {}
    exhausted: dict[str, bool] = {}
    for prefix in PREFIXES:
        position = positions.get(prefix)
        if position == "":
            fetched[prefix], exhausted[prefix] = [], True
            continue
        fetched[prefix] = _query(lead_id, prefix, position, limit + 1)
        exhausted[prefix] = len(fetched[prefix]) <= limit
    merged = sorted(
        ((_suffix(item.sk), prefix, item) for prefix in PREFIXES for item in fetched[prefix]),
        key=lambda entry: (entry[0], entry[1]),
        reverse=True,
    )[:limit]
    taken = {prefix: 0 for prefix in PREFIXES}
    new_positions = {prefix: positions[prefix] for prefix in PREFIXES if prefix in positions}
    for _, prefix, item in merged:
        taken[prefix] += 1
        new_positions[prefix] = item.sk
    more = False
    for prefix in PREFIXES:
        if exhausted[prefix] and taken[prefix] == len(fetched[prefix]):
            new_positions[prefix] = ""
        else:
            more = True
    items = [_entry(prefix, item) for _, prefix, item in merged]
    return Page(items, encode_cursor(lead_id, new_positions) if more else None)


def _query(lead_id: str, prefix: str, after_sk: str | None, count: int) -> list[Any]:
    model = _MODELS[prefix]
    start = {"pk": {"S": lead_pk(lead_id)}, "sk": {"S": after_sk}} if after_sk else None
    try:
        return list(
            model.query(
                lead_pk(lead_id),
                model.sk.startswith(prefix),
                scan_index_forward=False,
                limit=count,
                page_size=count,
                last_evaluated_key=start,
            )
        )
    except QueryError as error:
        if error.cause_response_code == "ValidationException":  # a start key DynamoDB refuses
            raise BadRequest("The cursor is not valid for this lead's timeline; start again without it.") from None
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error


def _at(sk: str) -> str:
    return sk.split("#", 2)[1]


def _entry(prefix: str, item: Any) -> dict:
    if prefix == TOUCH:
        at = (_plain(item.touch) or {}).get("captured_at")
        return {"at": at or _at(item.sk), "kind": "touch", "detail": touch_detail(item)}
    if prefix == EVENT:
        return {"at": item.occurred_at or _at(item.sk), "kind": "event", "detail": event_detail(item)}
    detail = _plain(item.detail) or {}
    if item.source and "source" not in detail:
        detail["source"] = item.source
    return {"at": item.at or _at(item.sk), "kind": item.kind, "detail": detail}


def touch_detail(item: TouchItem) -> dict:
    """Where the touch came from, never who: source, campaign parameters, the names of the click ids present,
    and the landing page without its query string (which may carry anything a page put there)."""
    touch = _plain(item.touch) or {}
    detail: dict[str, Any] = {"source": touch.get("source") or item.source}
    detail.update({name: touch[name] for name in UTM_PARAMS if touch.get(name)})
    clicks = [name for name in CLICK_IDS if touch.get(name)]
    if clicks:
        detail["click_ids"] = clicks
    page = _page(touch.get("landing_url"))
    if page:
        detail["landing_page"] = page
    return detail


def event_detail(item: EventItem) -> dict:
    """The event's type and properties (URLs without their query string, no personal fields)."""
    properties = {
        k: _page(v) or v if isinstance(v, str) and v.startswith(("http://", "https://")) else v
        for k, v in (_plain(item.properties) or {}).items()
        if k.lower() not in _PII_PROPERTIES
    }
    detail: dict[str, Any] = {"type": item.type, "properties": properties}
    if item.source:
        detail["source"] = item.source
    return detail


def _page(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
