"""Funnel counters, their per-record markers and imported spend: the only DynamoDB code of funnel analytics.

Keys (one partition per dimension and month; one item per day and shard holds every value of the dimension;
the month and its week parts are rolled up, so a report reads a few items per month, whatever the leads):
- counter  pk=FUNNEL#<dimension>#<YYYY-MM>   sk=<YYYY-MM-DD>#<shard 0-3>   `<value>|in_<stage>`, `<value>|out_<stage>`,
           `<value>|h_<stage>_<bucket>` numbers (ADD)
- roll-ups in the same partition: sk=M#<shard> (the whole month) and sk=W#<YYYY-Www>#<shard> (the days of
           that ISO week inside the month), the same numbers ADDed in the same transaction as the day item;
           dimension `all` (value `all`) counts every change once: the report's weekly trend
- marker   pk=FUNNELREC#<stream event id>    sk=FUNNELREC                 TTL 2 days
- spend    pk=SPEND#<YYYY-MM>                sk=<YYYY-MM-DD>#<channel>#<campaign>   cost in the report currency

A stream record is counted exactly once: its marker is put with attribute_not_exists in the same
TransactWriteItems as the counter ADDs, so a redelivered record (same event id) changes nothing and a lost
race with a concurrent transaction on the same counters is retried, never half-applied. A record's writes
go to one of 4 shards of the day (by its event id), which spreads concurrent transactions over 4 items.
A report reads roll-ups for the whole months and week parts of its range and day items only for the days
at its edges (`leadflow.domain.funnel.read_plan`), by exact key with BatchGetItem, so what it reads is bounded
by its months, weeks, edge days, the dimension's values and the stages, not by the number of leads.
Counter attribute names are data (the values), so these items are written with the store's botocore client
(the same one pynamodb uses) rather than a model with declared attributes.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Iterator
from datetime import date

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from leadflow.domain.funnel import Change, iso_week, read_plan
from leadflow.errors import StoreUnavailable
from leadflow.store.models import SpendItem, connection

SHARDS = 4
MARKER_SK = "FUNNELREC"
MARKER_TTL_SECONDS = 2 * 86400  # a stream keeps records 24 hours: a redelivery always finds its marker
ATTEMPTS = 8
SEPARATOR = "|"  # `<value>|<counter>`: counter names never contain it, so the last one splits
ROLLUP_SHARDS = 1  # roll-ups are not sharded: a report reads one item per month or week part (see README)
TREND = "all"  # the pseudo-dimension every change is counted under once (value `all`): the weekly trend
BATCH_KEYS = 100  # BatchGetItem's limit


def counter_pk(dimension: str, month: str) -> str:
    return f"FUNNEL#{dimension}#{month}"


def counter_sk(day: str, shard: int) -> str:
    return f"{day}#{shard}"


def period_sk(period: str, shard: int) -> str:
    """The sort key of a counter item of `period`: a month `YYYY-MM`, a week part `YYYY-Www` or a day."""
    if len(period) == 7:
        return f"M#{shard}"
    if "W" in period:
        return f"W#{period}#{shard}"
    return counter_sk(period, shard)


def _table() -> str:
    return SpendItem.Meta.table_name


def _client():
    return connection().client


def _shard(record_id: str) -> int:
    return zlib.crc32(record_id.encode()) % SHARDS


def _add(pk: str, sk: str, dimension: str, period: str, numbers: dict[str, int]) -> dict:
    """One Update that ADDs `numbers` (attribute name → amount) to a counter item (day or roll-up)."""
    names = {"#e": "entity", "#m": "dim", "#d": "day" if len(period) == 10 else "period"}
    values: dict[str, dict] = {":e": {"S": "funnel_counter"}, ":m": {"S": dimension}, ":d": {"S": period}}
    adds = []
    for i, (name, amount) in enumerate(numbers.items()):
        names[f"#a{i}"] = name
        values[f":a{i}"] = {"N": str(amount)}
        adds.append(f"#a{i} :a{i}")
    return {
        "TableName": _table(),
        "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
        "UpdateExpression": "SET #e = :e, #m = :m, #d = :d ADD " + ", ".join(adds),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def count_change(record_id: str, change: Change, now: float | None = None) -> bool:
    """Apply `change` once for the stream record `record_id`: True when counted now, False when it already was."""
    now = time.time() if now is None else now
    increments = change.increments()
    month, shard = change.day[:7], _shard(record_id)
    periods = ((change.day, shard), (iso_week(change.day), shard % ROLLUP_SHARDS), (month, shard % ROLLUP_SHARDS))
    marker = {
        "TableName": _table(),
        "Item": {
            "pk": {"S": f"FUNNELREC#{record_id}"},
            "sk": {"S": MARKER_SK},
            "entity": {"S": "funnel_marker"},
            "expires_at": {"N": str(int(now) + MARKER_TTL_SECONDS)},
        },
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    items = [{"Put": marker}]
    for dimension, value in {**change.values, TREND: TREND}.items():
        numbers = {f"{value}{SEPARATOR}{name}": n for name, n in increments.items()}
        for period, period_shard in periods:
            sk = period_sk(period, period_shard)
            items.append({"Update": _add(counter_pk(dimension, month), sk, dimension, period, numbers)})
    for attempt in range(ATTEMPTS):
        try:
            _client().transact_write_items(TransactItems=items)
            return True
        except ClientError as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False  # this record was counted before (a redelivery or a retried batch)
            if attempt == ATTEMPTS - 1:
                raise StoreUnavailable("The funnel counters could not be written; the record is retried.") from error
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto
        except BotoCoreError as error:
            raise StoreUnavailable("The funnel counters could not be written; the record is retried.") from error
    return False  # not reached


def _query(pk: str, first: str | None = None, last: str | None = None, keys_only: bool = False) -> Iterator[dict]:
    params: dict = {"TableName": _table(), "ExpressionAttributeValues": {":pk": {"S": pk}}}
    if first is not None:
        params["KeyConditionExpression"] = "pk = :pk AND sk BETWEEN :a AND :b"
        params["ExpressionAttributeValues"].update({":a": {"S": first}, ":b": {"S": last}})
    else:
        params["KeyConditionExpression"] = "pk = :pk"
    if keys_only:
        params["ProjectionExpression"] = "pk, sk"
    while True:
        page = _client().query(**params)
        yield from page.get("Items", [])
        if not page.get("LastEvaluatedKey"):
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _numbers(item: dict) -> dict[str, dict[str, int]]:
    """value → counter → n of a counter item."""
    by_value: dict[str, dict[str, int]] = {}
    for name, typed in item.items():
        if SEPARATOR in name and "N" in typed:
            value, counter = name.rsplit(SEPARATOR, 1)
            by_value.setdefault(value, {})[counter] = int(typed["N"])
    return by_value


def counters(dimension: str, months: Iterable[str], first_day: str, last_day: str) -> Iterator[tuple[str, str, dict]]:
    """`(day, value, numbers)` of the dimension's day items in [first_day, last_day]: one Query (and its pages)
    per month (rebuild checks, tests: the report reads `report_counters`)."""
    try:
        for month in months:
            for item in _query(counter_pk(dimension, month), f"{first_day}#", f"{last_day}#~"):
                for value, numbers in _numbers(item).items():
                    yield item["sk"]["S"][:10], value, numbers
    except (ClientError, BotoCoreError) as error:
        raise StoreUnavailable("The funnel counters could not be read; retry shortly.") from error


def _batch_get(keys: list[dict]) -> Iterator[dict]:
    """The items of `keys` that exist: BatchGetItem by 100 keys, unprocessed keys asked again."""
    for start in range(0, len(keys), BATCH_KEYS):
        pending, attempt = {_table(): {"Keys": keys[start : start + BATCH_KEYS]}}, 0
        while pending:
            answer = _client().batch_get_item(RequestItems=pending)
            yield from answer.get("Responses", {}).get(_table(), [])
            pending, attempt = answer.get("UnprocessedKeys") or {}, attempt + 1
            if pending:
                time.sleep(min(1.0, 0.05 * 2**attempt))


def report_counters(
    dimension: str, start: date, end: date
) -> tuple[list[tuple[str, str, dict]], list[tuple[str, dict]]]:
    """The counters of a report of [start, end]: rows `(period, value, numbers)` of the dimension (whole months
    and week parts from roll-ups, edge days from day items; numbers of a subtracted period negated) and the
    weekly trend rows `(ISO week, numbers)`, read by exact key (`read_plan`; every shard of each period) with
    BatchGetItem."""
    groups, trend = read_plan(start, end, day_cost=SHARDS // ROLLUP_SHARDS)
    wanted: dict[tuple[str, str], tuple[bool, str, int]] = {}  # (pk, sk) → (a trend item, its period, sign)
    plans = ((False, dimension, groups), (True, TREND, [(month, period, 1) for month, period in trend]))
    for is_trend, dim, plan in plans:
        for month, period, sign in plan:
            shards = SHARDS if len(period) == 10 else ROLLUP_SHARDS
            for shard in range(shards):
                wanted[(counter_pk(dim, month), period_sk(period, shard))] = (is_trend, period, sign)
    keys = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted]
    rows: list[tuple[str, str, dict]] = []
    weeks: list[tuple[str, dict]] = []
    try:
        for item in _batch_get(keys):
            is_trend, period, sign = wanted[(item["pk"]["S"], item["sk"]["S"])]
            for value, numbers in _numbers(item).items():
                if is_trend:
                    weeks.append((period if "W" in period else iso_week(period), numbers))
                else:
                    rows.append((period, value, {name: sign * n for name, n in numbers.items()}))
    except (ClientError, BotoCoreError) as error:
        raise StoreUnavailable("The funnel counters could not be read; retry shortly.") from error
    return rows, weeks


def _batch_write(requests: Iterable[dict]) -> int:
    done, chunk = 0, []
    for request in requests:
        chunk.append(request)
        if len(chunk) == 25:
            done += _write_chunk(chunk)
            chunk = []
    if chunk:
        done += _write_chunk(chunk)
    return done


def _write_chunk(chunk: list[dict]) -> int:
    pending, attempt = {_table(): chunk}, 0
    while pending:
        unprocessed = _client().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        pending, attempt = unprocessed, attempt + 1
        if pending:
            time.sleep(min(1.0, 0.05 * 2**attempt))
    return len(chunk)


def write_counters(rows: Iterable[tuple[str, str, int, dict[str, dict[str, int]]]]) -> int:
    """Put counter items with absolute numbers: `(dimension, day, shard, {value: {counter: n}})` (rebuild, bench;
    include dimension `all` for the trend), then the month and week-part roll-ups summed from those rows: the
    rows must hold every day of the months they touch (rebuild clears those months first)."""
    rollups: dict[tuple[str, str, str, int], dict[str, dict[str, int]]] = {}

    def item_of(dimension: str, month: str, period: str, shard: int, by_value: dict) -> dict:
        item = {
            "pk": {"S": counter_pk(dimension, month)},
            "sk": {"S": period_sk(period, shard)},
            "entity": {"S": "funnel_counter"},
            "dim": {"S": dimension},
            ("day" if len(period) == 10 else "period"): {"S": period},
        }
        for value, numbers in by_value.items():
            for name, n in numbers.items():
                item[f"{value}{SEPARATOR}{name}"] = {"N": str(n)}
        return {"PutRequest": {"Item": item}}

    def requests() -> Iterator[dict]:
        for dimension, day, shard, by_value in rows:
            yield item_of(dimension, day[:7], day, shard, by_value)
            for period in (iso_week(day), day[:7]):
                sums = rollups.setdefault((dimension, day[:7], period, shard % ROLLUP_SHARDS), {})
                for value, numbers in by_value.items():
                    into = sums.setdefault(value, {})
                    for name, n in numbers.items():
                        into[name] = into.get(name, 0) + n
        for (dimension, month, period, shard), by_value in rollups.items():
            yield item_of(dimension, month, period, shard, by_value)

    try:
        return _batch_write(requests())
    except (ClientError, BotoCoreError) as error:
        raise StoreUnavailable("The funnel counters could not be written; retry shortly.") from error


def clear_counters(dimension: str, months: Iterable[str]) -> int:
    """Delete every counter item of the dimension in those months (rebuild starts from zero)."""
    try:
        keys = [
            {"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
            for month in months
            for item in _query(counter_pk(dimension, month), keys_only=True)
        ]
        return _batch_write(keys)
    except (ClientError, BotoCoreError) as error:
        raise StoreUnavailable("The funnel counters could not be cleared; retry shortly.") from error


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
