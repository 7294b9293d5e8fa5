"""Funnel counters, their per-record markers and imported spend: the only DynamoDB code of funnel analytics.

Keys (one partition per dimension and month, so a report is a few Queries by key range whatever the
number of leads, and a month's writes spread over 4 shards of the sort key):
- counter  pk=FUNNEL#<dimension>#<YYYY-MM>   sk=<YYYY-MM-DD>#<shard 0-3>#<value>   in_/out_/h_ numbers (ADD)
- marker   pk=FUNNELREC#<stream event id>    sk=FUNNELREC                          TTL 2 days
- spend    pk=SPEND#<YYYY-MM>                sk=<YYYY-MM-DD>#<channel>#<campaign>   cost in the report currency

A stream record is counted exactly once: its marker is put with attribute_not_exists in the same
TransactWriteItems as the counter ADDs, so a redelivered record (same event id) changes nothing and a lost
race with a concurrent transaction on the same counters is retried, never half-applied.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Iterator

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from leadflow.domain.funnel import Change
from leadflow.errors import StoreUnavailable
from leadflow.store.models import FunnelCounterItem, FunnelMarkerItem, SpendItem, connection

SHARDS = 4
MARKER_SK = "FUNNELREC"
MARKER_TTL_SECONDS = 2 * 86400  # a stream keeps records 24 hours: a redelivery always finds its marker
ATTEMPTS = 8


def counter_pk(dimension: str, month: str) -> str:
    return f"FUNNEL#{dimension}#{month}"


def counter_sk(day: str, shard: int, value: str) -> str:
    return f"{day}#{shard}#{value}"


def _shard(record_id: str) -> int:
    return zlib.crc32(record_id.encode()) % SHARDS


def count_change(record_id: str, change: Change, now: float | None = None) -> bool:
    """Apply `change` once for the stream record `record_id`: True when counted now, False when it already was."""
    now = time.time() if now is None else now
    increments = change.increments()
    month, shard = change.day[:7], _shard(record_id)
    for attempt in range(ATTEMPTS):
        try:
            with TransactWrite(connection=connection()) as tx:
                marker = FunnelMarkerItem(
                    f"FUNNELREC#{record_id}",
                    MARKER_SK,
                    entity="funnel_marker",
                    expires_at=int(now) + MARKER_TTL_SECONDS,
                )
                tx.save(marker, condition=FunnelMarkerItem.pk.does_not_exist())
                for dimension, value in change.values.items():
                    item = FunnelCounterItem(counter_pk(dimension, month), counter_sk(change.day, shard, value))
                    actions = [
                        FunnelCounterItem.entity.set("funnel_counter"),
                        FunnelCounterItem.dim.set(dimension),
                        FunnelCounterItem.day.set(change.day),
                        FunnelCounterItem.value.set(value),
                    ]
                    actions += [getattr(FunnelCounterItem, name).add(n) for name, n in increments.items()]
                    tx.update(item, actions=actions)
            return True
        except TransactWriteError as error:
            reasons = [r.code if r is not None else None for r in (error.cancellation_reasons or [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False  # this record was counted before (a redelivery or a retried batch)
            if attempt == ATTEMPTS - 1:
                raise StoreUnavailable("The funnel counters could not be written; the record is retried.") from error
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto
        except PynamoDBException as error:
            raise StoreUnavailable("The funnel counters could not be written; the record is retried.") from error
    return False  # not reached


def counters(dimension: str, months: Iterable[str], first_day: str, last_day: str) -> Iterator[tuple[str, str, dict]]:
    """`(day, value, numbers)` of every counter item of the dimension in [first_day, last_day]: one Query (and
    its pages) per month partition."""
    try:
        for month in months:
            condition = FunnelCounterItem.sk.between(f"{first_day}#", f"{last_day}#~")
            for item in FunnelCounterItem.query(counter_pk(dimension, month), condition):
                numbers = {
                    name: int(value)
                    for name, value in item.attribute_values.items()
                    if name.startswith(("in_", "out_", "h_")) and value
                }
                yield item.day or item.sk[:10], item.value or item.sk.split("#", 2)[2], numbers
    except PynamoDBException as error:
        raise StoreUnavailable("The funnel counters could not be read; retry shortly.") from error


def write_counters(rows: Iterable[tuple[str, str, str, dict[str, int]]]) -> int:
    """Batch-write `(dimension, day, value, numbers)` counter items (absolute numbers, shard 0)."""
    written = 0
    try:
        with FunnelCounterItem.batch_write() as batch:
            for dimension, day, value, numbers in rows:
                batch.save(
                    FunnelCounterItem(
                        counter_pk(dimension, day[:7]),
                        counter_sk(day, 0, value),
                        entity="funnel_counter",
                        dim=dimension,
                        day=day,
                        value=value,
                        **numbers,
                    )
                )
                written += 1
    except PynamoDBException as error:
        raise StoreUnavailable("The funnel counters could not be written; retry shortly.") from error
    return written


def clear_counters(dimension: str, months: Iterable[str]) -> int:
    """Delete every counter item of the dimension in those months (rebuild starts from zero)."""
    deleted = 0
    try:
        with FunnelCounterItem.batch_write() as batch:
            for month in months:
                for item in FunnelCounterItem.query(counter_pk(dimension, month), attributes_to_get=["pk", "sk"]):
                    batch.delete(item)
                    deleted += 1
    except PynamoDBException as error:
        raise StoreUnavailable("The funnel counters could not be cleared; retry shortly.") from error
    return deleted


# ------------------------------------------------------------------------------------------------ spend
def spend_pk(month: str) -> str:
    return f"SPEND#{month}"


def put_spend(rows: Iterable[dict], imported_at: str) -> int:
    """Store spend rows `{day, channel, campaign, cost, amount, currency}`; a row for the same day, channel
    and campaign replaces the earlier import (importing a file twice changes nothing)."""
    count = 0
    try:
        with SpendItem.batch_write() as batch:
            for row in rows:
                batch.save(
                    SpendItem(
                        spend_pk(row["day"][:7]),
                        f"{row['day']}#{row['channel']}#{row['campaign']}",
                        entity="spend",
                        day=row["day"],
                        channel=row["channel"],
                        campaign=row["campaign"],
                        cost=float(row["cost"]),
                        amount=float(row["amount"]),
                        currency=row["currency"],
                        imported_at=imported_at,
                    )
                )
                count += 1
    except PynamoDBException as error:
        raise StoreUnavailable("The spend could not be stored; retry shortly.") from error
    return count


def spend(months: Iterable[str], first_day: str, last_day: str) -> Iterator[tuple[str, str, str, float]]:
    """`(day, channel, campaign, cost)` of the range: one Query per month partition."""
    try:
        for month in months:
            for item in SpendItem.query(spend_pk(month), SpendItem.sk.between(f"{first_day}#", f"{last_day}#~")):
                yield item.day, item.channel, item.campaign, float(item.cost or 0)
    except PynamoDBException as error:
        raise StoreUnavailable("The spend could not be read; retry shortly.") from error


def stage_moves(lead_id: str) -> list[dict]:
    """The lead's stage history `{from, to, at}`, oldest first (one Query of its HIST# items; rebuild only)."""
    from leadflow.store.leads import _plain
    from leadflow.store.models import HistoryItem, lead_pk

    try:
        items = HistoryItem.query(lead_pk(lead_id), HistoryItem.sk.startswith("HIST#"))
        return [{**_plain(i.detail), "at": i.at} for i in items if i.kind == "stage"]
    except PynamoDBException as error:
        raise StoreUnavailable("The lead store did not answer; retry shortly.") from error
