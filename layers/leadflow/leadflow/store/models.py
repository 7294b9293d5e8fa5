"""pynamodb models of the single leads table (key schema: pk/sk, defined once in template.yaml).

Items, all carrying `entity` so stream consumers can filter:
- lead      pk=LEAD#<id>      sk=LEAD                         the person
- touch     pk=LEAD#<id>      sk=TOUCH#<captured_at>#<id>     one submission (history)
- conflict  pk=LEAD#<id>      sk=CONFLICT#<key>               a key owned by another lead (twin on the other)
- identity  pk=EMAIL#…|PHONE#…|EXT#<provider>#<id>  sk=IDENTITY  uniqueness item → lead id
- delivery  pk=EVENT#<provider>#<event id>           sk=DELIVERY  the answer given to a provider event
- tombstone pk=EVENT#<provider>#<event id>           sk=DELIVERY  an erased lead's delivery: no lead data (TTL)
- click     pk=CLICK#<platform>#<click id>           sk=CLICK     an ad click announced by click monitoring (TTL)
- quarantine pk=QUARANTINE  sk=QUARANTINE#<id>            a signed delivery validation refused (TTL; one
             partition, so `leadflow quarantine list` is a Query, never a Scan)
- quarantine key  pk=EMAIL#…|PHONE#…|EXT#…  sk=QUARANTINE#<id>  finds a person's quarantined deliveries (TTL)
- event     pk=LEAD#<id>      sk=EVENT#<occurred_at>#<id>     one engagement event (email_click, page_view, ...)
- history   pk=LEAD#<id>      sk=HIST#<at>#<kind>#<id>        a change worth a timeline entry: score, stage,
             owner, push, journey send, CRM feedback, conversion (kind + PII-free detail)
- conversion pk=LEAD#<id>      sk=CONV#<platform>#<stage>      a conversion reported to an ad platform
- anonymous pk=ANON#<email>   sk=EVENT#<occurred_at>#<id> | MARKER   events of an email no lead holds yet (TTL)
- routing  pk=ROUTING          sk=STATE                       team round-robin cursors and each owner's count of
             assignments on their local day (one item, written at the version read: race-free, never in memory)
- CRM link pk=CRMID#<crm>#<record id> | CRMDEAL#<crm>#<deal id>   sk=IDENTITY   a CRM record → its lead
             (written back by the push) / a deal → its contact; `answer.pending` while events wait for it
- CRM pending pk=CRMPENDING#<crm>#<type>#<id>  sk=EVENT#<occurred_at>#<key>  a CRM event waiting for its lead
- send      pk=LEAD#<id>      sk=SEND#<journey>#<enrolment>#<touch>  a journey touch's send ledger entry (TTL)
The lead's timeline is its TOUCH#, EVENT# and HIST# items, newest first (each sk starts with its kind and an
ISO-8601 UTC time, so one Query per kind pages it in time order).
"""

from __future__ import annotations

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection, TableConnection
from pynamodb.connection.base import MetaTable
from pynamodb.constants import ATTR_DEFINITIONS, GLOBAL_SECONDARY_INDEXES, LOCAL_SECONDARY_INDEXES
from pynamodb.exceptions import TableError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from leadflow import aws
from leadflow.config import Settings, settings

LEAD_SK = "LEAD"
IDENTITY_SK = "IDENTITY"
DELIVERY_SK = "DELIVERY"
CLICK_SK = "CLICK"
QUARANTINE_PK = "QUARANTINE"


def lead_pk(lead_id: str) -> str:
    return f"LEAD#{lead_id}"


class SharedSessionConnection(Connection):
    """pynamodb's Connection on the process's one botocore session (leadflow.aws), client made under its lock."""

    @property
    def session(self):  # type: ignore[override] - the same session in every thread
        return aws.botocore_session()

    @property
    def client(self):  # type: ignore[override]
        with aws.client_lock():
            return Connection.client.fget(self)  # type: ignore[attr-defined]


_connections: dict[tuple[str | None, str | None], Connection] = {}


def connection() -> Connection:
    """The one pynamodb Connection (one botocore client) per endpoint that every model and transaction uses.

    Left to itself pynamodb gives each model class its own Connection, botocore session and client, so a
    capture (LookupItem's BatchGetItem, then the TransactWriteItems) built two of each on its first request.
    """
    meta = _Table.Meta
    key = (meta.region, meta.host)
    if key not in _connections:
        with aws.client_lock():
            if key not in _connections:
                _connections[key] = SharedSessionConnection(
                    region=meta.region,
                    host=meta.host,
                    connect_timeout_seconds=meta.connect_timeout_seconds,
                    read_timeout_seconds=meta.read_timeout_seconds,
                    max_retry_attempts=meta.max_retry_attempts,
                )
    return _connections[key]


def _merge_indexes(shared: MetaTable, own: MetaTable) -> None:
    """The shared meta table is registered by the first model used; a model declaring an index (LeadKeyItem's
    LeadsByStage) adds its index and key attributes to it, so its queries find the index whatever ran first."""
    for section in (GLOBAL_SECONDARY_INDEXES, LOCAL_SECONDARY_INDEXES, ATTR_DEFINITIONS):
        known = shared.data.setdefault(section, [])
        for entry in own.data.get(section) or []:
            if entry not in known:
                known.append(entry)


class _Table(Model):
    @classmethod
    def _get_connection(cls) -> TableConnection:
        """pynamodb's per-model TableConnection, pointed at the shared `connection()`."""
        table = super()._get_connection()
        shared = connection()
        if table.connection is not shared:
            try:
                _merge_indexes(shared.get_meta_table(table.table_name), table.get_meta_table())
            except TableError:
                shared.add_meta_table(table.get_meta_table())
            table.connection = shared
        return table

    class Meta:
        table_name = "LeadsTable"
        region = "us-east-1"
        host: str | None = None
        connect_timeout_seconds = 2
        read_timeout_seconds = 5
        max_retry_attempts = 3

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    entity = UnicodeAttribute(null=True)


class LeadItem(_Table):
    lead_id = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    first_name = UnicodeAttribute(null=True)
    last_name = UnicodeAttribute(null=True)
    company = UnicodeAttribute(null=True)
    job_title = UnicodeAttribute(null=True)
    country = UnicodeAttribute(null=True)
    attributes = MapAttribute(default=dict)
    lifecycle_stage = UnicodeAttribute(default="lead")
    disqualified_reasons = ListAttribute(of=UnicodeAttribute, null=True)
    is_test = BooleanAttribute(default=False)
    score = MapAttribute(default=dict)
    attribution = MapAttribute(default=dict)
    consent = MapAttribute(default=dict)
    touch_count = NumberAttribute(default=0)
    latest_touch = MapAttribute(null=True)
    identity_keys = ListAttribute(of=UnicodeAttribute, default=list)
    crm = MapAttribute(default=dict)
    journey = MapAttribute(null=True)
    source = UnicodeAttribute(null=True)
    profile_updated_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    erasing = UnicodeAttribute(null=True)  # set when erasure starts: the lead is gone for readers and captures
    persona = UnicodeAttribute(null=True)  # from the scoring model (company size, title)
    mql_at = UnicodeAttribute(null=True)  # first time the lead became an MQL (kept on later stages)
    stage_changed_at = UnicodeAttribute(null=True)
    suppressed = MapAttribute(null=True)  # {reason, since, until, source}: unsubscribe, bounce, complaint, CRM reason
    owner = MapAttribute(null=True)  # {id, name, team, rule, assigned_at} once routed
    engagement = ListAttribute(null=True)  # compact, capped summary of scored events (domain/engagement.py)
    crm_feedback = MapAttribute(null=True)  # the CRM's last verdict applied: {at, outcome, reason, rule, ...}
    version = VersionAttribute()


class TouchItem(_Table):
    lead_id = UnicodeAttribute()
    source = UnicodeAttribute()
    touch = MapAttribute(default=dict)
    submitted = MapAttribute(default=dict)
    delivery_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class KeyItem(_Table):
    """Identity (uniqueness) items and delivery (idempotency) items: both map a key to a lead.
    A tombstone (entity `tombstone`) is a delivery item of an erased lead: no lead id, no answer."""

    lead_id = UnicodeAttribute(null=True)
    answer = MapAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class EventItem(_Table):
    """One engagement event of a lead (`POST /v1/events`): what scoring and the timeline read."""

    lead_id = UnicodeAttribute()
    type = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    properties = MapAttribute(default=dict)
    source = UnicodeAttribute(null=True)
    delivery_key = UnicodeAttribute(null=True)  # erasure tombstones it, so a replay cannot bring the person back
    created_at = UnicodeAttribute()


class HistoryItem(_Table):
    """A timeline entry that is not a touch or an event: `kind` (score, stage, owner, push, journey, crm,
    conversion, suppression) and a PII-free `detail` (rule ids, stages, reasons, targets, ids)."""

    lead_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    at = UnicodeAttribute()
    detail = MapAttribute(default=dict)
    source = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class SendItem(_Table):
    """A journey touch's send ledger entry, claimed before the send (`attribute_not_exists`) and completed after
    it: a retried task finds it and does not send again. `status`: sending | sent | failed (retry may send)."""

    lead_id = UnicodeAttribute()
    status = UnicodeAttribute()
    at = UnicodeAttribute()  # when the touch was first attempted: the timeline entry's time on every retry
    channel = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    to = UnicodeAttribute(null=True)  # masked recipient
    expires_at = NumberAttribute()


def send_sk(journey: str, enrolment: int, touch: str) -> str:
    return f"SEND#{journey}#{enrolment}#{touch}"


class AnonymousEventItem(_Table):
    """`ANON#<email>` / `EVENT#<occurred_at>#<id>`: an event for an email no lead holds yet (TTL). Applied to
    the lead when that email becomes one; `ANON#<email>` / `MARKER` says some are waiting (capture reads it)."""

    type = UnicodeAttribute(null=True)
    occurred_at = UnicodeAttribute(null=True)
    properties = MapAttribute(null=True)
    source = UnicodeAttribute(null=True)
    delivery_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


ANON_MARKER_SK = "MARKER"


def anonymous_pk(email: str) -> str:
    return f"ANON#{email}"


def event_sk(occurred_at: str, event_id: str) -> str:
    return f"EVENT#{occurred_at}#{event_id}"


def history_sk(at: str, kind: str, entry_id: str) -> str:
    return f"HIST#{at}#{kind}#{entry_id}"


class ConflictItem(_Table):
    key = UnicodeAttribute()
    other_lead_id = UnicodeAttribute()
    detected_at = UnicodeAttribute()


class ClickItem(_Table):
    """An ad click announced by Baidu/Tencent click monitoring; expires (TTL) after 90 days."""

    platform = UnicodeAttribute()
    click_id = UnicodeAttribute()
    callback_url = UnicodeAttribute(null=True)
    account_id = UnicodeAttribute(null=True)
    campaign_id = UnicodeAttribute(null=True)
    adgroup_id = UnicodeAttribute(null=True)
    ad_id = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)
    click_time = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()


class QuarantineItem(_Table):
    """A signed delivery (or a fetched lead's pointer) that validation refused, kept for replay (TTL).

    `body` holds personal data: it is stored like a lead (same table, same encryption), never logged, and
    expires with `expires_at`. `reason` holds field paths and messages only, never submitted values.
    """

    source = UnicodeAttribute()
    kind = UnicodeAttribute()  # "delivery": the verified body; "pointer": a lead to fetch again
    quarantine_id = UnicodeAttribute()
    delivery_key = UnicodeAttribute(null=True)
    reason = ListAttribute(of=MapAttribute, default=list)
    received_at = UnicodeAttribute()
    replayed_at = UnicodeAttribute(null=True)
    replays = NumberAttribute(default=0)
    body = BinaryAttribute(null=True, legacy_encoding=False)
    verified = UnicodeAttribute(null=True)  # JSON of what the provider's verify returned (parse needs it)
    pointer = MapAttribute(null=True)
    identity_keys = ListAttribute(of=UnicodeAttribute, null=True)
    expires_at = NumberAttribute()


class QuarantineKeyItem(_Table):
    """`<identity key>` / `QUARANTINE#<id>`: lets an erasure find the deliveries quarantined for a person."""

    quarantine_id = UnicodeAttribute()
    expires_at = NumberAttribute()


class RoutingStateItem(_Table):
    """`ROUTING` / `STATE`: the routing state every assignment reads and writes at its version."""

    cursors = MapAttribute(default=dict)  # team id → index of the member whose turn is next
    counts = MapAttribute(default=dict)  # owner id → {"day": owner's local ISO date, "n": assignments that day}
    updated_at = UnicodeAttribute(null=True)
    version = VersionAttribute()


class LeadsByStageIndex(GlobalSecondaryIndex):
    """Sparse index of lead items only (the only items with `lifecycle_stage`): stage → created_at. Operator
    commands (`leadflow score simulate|rescore`) page through a cohort of leads with it, never with a Scan.
    Keys only: a lead's writes touch the index only when it is created or changes stage."""

    class Meta:
        index_name = "LeadsByStage"
        projection = KeysOnlyProjection()

    lifecycle_stage = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class LeadKeyItem(_Table):
    """A lead's keys as the `LeadsByStage` index returns them."""

    lifecycle_stage = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    by_stage = LeadsByStageIndex()


class ConversionItem(_Table):
    """`LEAD#<id>` / `CONV#<platform>#<stage>`: one conversion reported (or being reported) to an ad platform,
    the idempotency record of `<lead_id>#<stage>` (store/conversions.py)."""

    lead_id = UnicodeAttribute()
    platform = UnicodeAttribute()
    stage = UnicodeAttribute()
    status = UnicodeAttribute()  # sending | sent | dead
    claim = UnicodeAttribute()  # the queue message's claim id
    lease_until = NumberAttribute()  # unix seconds
    at = UnicodeAttribute(null=True)  # when the stage was reached
    sent_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)


class LookupItem(KeyItem, ClickItem):
    """What capture's one BatchGetItem reads: identity, delivery and click items."""


class EventLookupItem(LeadItem, KeyItem):
    """What an engagement event's one BatchGetItem reads: a lead, a delivery, an identity item or a marker."""


class AnyItem(_Table):
    """Every item of a lead's partition, read for erasure (only what erasure needs is declared)."""

    identity_keys = ListAttribute(of=UnicodeAttribute, null=True)
    erasing = UnicodeAttribute(null=True)
    delivery_key = UnicodeAttribute(null=True)
    submitted = MapAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    key = UnicodeAttribute(null=True)
    other_lead_id = UnicodeAttribute(null=True)
    crm = MapAttribute(null=True)  # the lead's CRM write-backs, and push history entries (kind, detail): what
    kind = UnicodeAttribute(null=True)  # erasure must delete in the CRMs
    detail = MapAttribute(null=True)


class CrmPendingItem(_Table):
    """`CRMPENDING#<crm>#<object type>#<id>` / `EVENT#<occurred_at>#<key>`: a CRM event for a record no lead
    is linked to yet (TTL); applied when the push writes the CRM id back or the deal's contact is known."""

    event = MapAttribute(null=True)  # the CrmEvent (CRM ids, outcome, reason, value: no email)
    delivery_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


# Funnel analytics (leadflow.store.funnel): imported ad spend. The counters themselves are items written and
# read by leadflow.store.funnel on the same client, in SpendItem's table: the funnel table (bind()).
class SpendItem(_Table):
    """`SPEND#<YYYY-MM>` / `<day>#<channel>#<campaign>`: imported ad spend, in the report currency."""

    class Meta(_Table.Meta):  # its own, so bind() can point it at the funnel table
        table_name = "FunnelTable"

    day = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    campaign = UnicodeAttribute(null=True)
    cost = NumberAttribute(null=True)
    amount = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    imported_at = UnicodeAttribute(null=True)


ALL_MODELS = (
    SpendItem,
    LeadItem,
    TouchItem,
    KeyItem,
    ConflictItem,
    EventItem,
    HistoryItem,
    AnonymousEventItem,
    AnyItem,
    ClickItem,
    LookupItem,
    LeadKeyItem,
    EventLookupItem,
    QuarantineItem,
    QuarantineKeyItem,
    RoutingStateItem,
    ConversionItem,
    CrmPendingItem,
    SendItem,
)


def bind(config: Settings | None = None) -> None:
    """Point every model at the configured table/endpoint (module import does it; tests call it again)."""
    config = config or settings()
    for model in (_Table, *ALL_MODELS):
        model.Meta.table_name = config.funnel_table_name if model is SpendItem else config.table_name
        model.Meta.region = config.aws_region
        model.Meta.host = config.dynamodb_endpoint
        model._connection = None


bind()
