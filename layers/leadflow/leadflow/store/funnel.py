"""Funnel counters, their per-record markers and imported spend: the only DynamoDB code of funnel analytics.

Keys (one partition per dimension and month):
- day item pk=FUNNEL#<dimension>#<YYYY-MM>   sk=<YYYY-MM-DD>#<shard 0-3>   `<value>|in_<stage>`, `<value>|out_<stage>`,
           `<value>|h_<stage>_<bucket>` numbers (ADD); the record of truth, written by every version
- roll-ups in the same partition: sk=R#M#<n> (the whole month) and sk=R#W#<YYYY-Www>#<n> (the days of that ISO
           week inside the month): per value ONE list `v:<value>` of the fixed counters of
           `leadflow.domain.funnel.COUNTERS` (68 numbers, `SET #v[i] = #v[i] + :n`), so an item's size and the
           cost of reading it depend on the values it holds, never on the leads behind them. Item n=0 takes
           values while its `bytes` (what its lists may take, budgeted when a value is added) leave room, then
           a value goes to its spill item 1-7 (by hash); `full` marks an item out of budget (a value that finds
           item 0 and its spill item full is counted in the day items only, and the report reads it there).
           Dimension `all` (value `all`, item 0) counts every change once: the report's weekly trend.
- marker   pk=FUNNELREC#<stream event id>    sk=FUNNELREC                 TTL 2 days
- spend    pk=SPEND#<YYYY-MM>                sk=<YYYY-MM-DD>#<channel>#<campaign>   cost in the report currency

A stream record is counted exactly once: its marker is put with attribute_not_exists in the same
TransactWriteItems as the counter writes, so a redelivered record (same event id) changes nothing and a lost
race with a concurrent transaction on the same counters is retried, never half-applied. A record's day writes
go to one of 4 shards of the day (by its event id), which spreads concurrent transactions over 4 items.

A period's roll-up is made when the stream first counts a change in it (`_make_period`): item 0 and the spill
items with values are put at once, from the sum of the period's day items, each only if absent; until then no
transaction can write a day item of the period (each needs the roll-up), so the roll-up equals the day items
from then on. So roll-ups are never missing after an upgrade from day items only: a period the new code never
counted has no item 0, and the report reads its day items instead; a period it counted was summed from them.

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
from datetime import date, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from leadflow.domain.funnel import (
    COUNTER_INDEX,
    COUNTERS,
    Change,
    from_vector,
    iso_week,
    period_days,
    read_plan,
    vector,
)
from leadflow.errors import StoreUnavailable
from leadflow.store.models import SpendItem, connection

SHARDS = 4
MARKER_SK = "FUNNELREC"
MARKER_TTL_SECONDS = 2 * 86400  # a stream keeps records 24 hours: a redelivery always finds its marker
ATTEMPTS = 8
SEPARATOR = "|"  # `<value>|<counter>`: counter names never contain it, so the last one splits
ROLLUP_SHARDS = 8  # a period's roll-up: item 0, then 7 spill items by value hash when item 0 is full
ROLLUP_BUDGET = 350_000  # bytes of value lists one roll-up item may take (DynamoDB's limit is 409,600)
ELEMENT_BYTES = 5  # a list element as DynamoDB sizes it: 1 byte + a number of up to 6 digits (budgeted so)
VALUE_PREFIX = "v:"  # `v:<value>`: never a key or bookkeeping attribute, whatever the value
TREND = "all"  # the pseudo-dimension every change is counted under once (value `all`): the weekly trend
BATCH_KEYS = 100  # BatchGetItem's limit
ONE_DAY = timedelta(days=1)
_where: dict[tuple[str, str, str, str], int | None] = {}  # (table, pk, period, value) → its roll-up item (None: full)


def counter_pk(dimension: str, month: str) -> str:
    return f"FUNNEL#{dimension}#{month}"


def counter_sk(day: str, shard: int) -> str:
    return f"{day}#{shard}"


def period_sk(period: str, shard: int) -> str:
    """The sort key of a counter item of `period`: a month `YYYY-MM` or a week part `YYYY-Www` (roll-ups, by
    value shard), or a day (by record shard)."""
    if len(period) == 7:
        return f"R#M#{shard}"
    if "W" in period:
        return f"R#W#{period}#{shard}"
    return counter_sk(period, shard)


def spill_shard(value: str) -> int:
    """The roll-up item a value goes to when item 0 of its period is full: 1 to ROLLUP_SHARDS - 1, by hash."""
    return 1 + zlib.crc32(value.encode()) % (ROLLUP_SHARDS - 1)


def value_bytes(value: str) -> int:
    """What a value's list takes in a roll-up item, as DynamoDB sizes items (name, list header, elements)."""
    return len((VALUE_PREFIX + value).encode()) + 3 + len(COUNTERS) * ELEMENT_BYTES


def day_shards(by_value: dict[str, dict[str, int]]) -> dict[int, dict[str, dict[str, int]]]:
    """A day's values spread over its 4 day items by value hash (rebuild: a day of many values fits)."""
    out: dict[int, dict[str, dict[str, int]]] = {}
    for value, numbers in by_value.items():
        out.setdefault(zlib.crc32(value.encode()) % SHARDS, {})[value] = numbers
    return out


def _table() -> str:
    return SpendItem.Meta.table_name


def _client():
    return connection().client


def _shard(record_id: str) -> int:
    return zlib.crc32(record_id.encode()) % SHARDS


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _add(pk: str, sk: str, dimension: str, period: str, numbers: dict[str, int]) -> dict:
    """One Update that ADDs `numbers` (attribute name → amount) to a day item."""
    names = {"#e": "entity", "#m": "dim", "#d": "day"}
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


def _increment(pk: str, sk: str, value: str, numbers: dict[str, int]) -> dict | None:
    """One Update that adds `numbers` to the elements of a value's roll-up list (which must exist)."""
    sets, values = [], {}
    for name, amount in numbers.items():
        if name in COUNTER_INDEX:
            i = COUNTER_INDEX[name]
            sets.append(f"#v[{i}] = #v[{i}] + :a{i}")
            values[f":a{i}"] = {"N": str(amount)}
    if not sets:
        return None
    return {
        "TableName": _table(),
        "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(#v)",
        "ExpressionAttributeNames": {"#v": VALUE_PREFIX + value},
        "ExpressionAttributeValues": values,
    }


def _rollup_item(
    dimension: str,
    month: str,
    period: str,
    shard: int,
    by_value: dict[str, dict[str, int]],
    full: bool = False,
    made: str | None = None,
) -> dict:
    """A roll-up item with absolute numbers (`full`: values were left out, they did not fit its budget; `made`:
    the day of the change that made the period, or its first day when written whole)."""
    item: dict[str, dict] = {
        "pk": {"S": counter_pk(dimension, month)},
        "sk": {"S": period_sk(period, shard)},
        "entity": {"S": "funnel_counter"},
        "dim": {"S": dimension},
        "period": {"S": period},
        "bytes": {"N": str(sum(value_bytes(v) for v in by_value))},
    }
    for value, numbers in by_value.items():
        item[VALUE_PREFIX + value] = {"L": [{"N": str(n)} for n in vector(numbers)]}
    if full:
        item["full"] = {"BOOL": True}
    if made is not None:
        item["made"] = {"S": made}
    return item


def _rollup_items(
    dimension: str, month: str, period: str, by_value: dict[str, dict[str, int]], made: str | None = None
) -> list[dict]:
    """A period's roll-up items: item 0 with the values that fit its budget, the rest in spill items by hash;
    item 0 always (it says the period is rolled up)."""
    placed: dict[int, dict[str, dict[str, int]]] = {0: {}}
    used: dict[int, int] = {}
    full: set[int] = set()
    for value in sorted(by_value):
        size = value_bytes(value)
        shard = 0
        if dimension != TREND and used.get(0, 0) + size > ROLLUP_BUDGET:
            full.add(0)
            shard = spill_shard(value)
            if used.get(shard, 0) + size > ROLLUP_BUDGET:
                full.add(shard)  # left to the day items, which the report reads for a full spill item
                continue
        placed.setdefault(shard, {})[value] = by_value[value]
        used[shard] = used.get(shard, 0) + size
    made = made or period_days(month, period)[0]
    items = [
        _rollup_item(dimension, month, period, shard, values, shard in full, made if shard == 0 else None)
        for shard, values in sorted(placed.items())
    ] + [_rollup_item(dimension, month, period, shard, {}, True) for shard in sorted(full - set(placed))]
    spill = sorted(int(item["sk"]["S"].rsplit("#", 1)[1]) for item in items[1:])
    if spill:
        items[0]["spill"] = {"NS": [str(n) for n in spill]}  # the spill items a report reads after item 0
    return items


def _make_period(dimension: str, month: str, period: str, day: str) -> None:
    """Make a period's roll-up from its day items (every day item any version wrote), all its items put at
    once, each only if absent (a concurrent maker wins)."""
    days = period_days(month, period)
    sums: dict[str, dict[str, int]] = {}
    for item in _query(counter_pk(dimension, month), f"{days[0]}#", f"{days[-1]}#~", consistent=True):
        for value, numbers in _numbers(item).items():
            into = sums.setdefault(value, {})
            for name, n in numbers.items():
                into[name] = into.get(name, 0) + n
    puts = [
        {"Put": {"TableName": _table(), "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
        for item in _rollup_items(dimension, month, period, sums, made=day)
    ]
    try:
        _client().transact_write_items(TransactItems=puts)
    except ClientError as error:
        if _code(error) != "TransactionCanceledException":
            raise
        for put in puts:  # made concurrently: put what is still missing (nothing, usually)
            _put_if_absent(put["Put"]["Item"])


def _add_value(pk: str, dimension: str, day: str, period: str, value: str, shard: int) -> bool:
    """Give `value` its (zero) list in roll-up item `shard` of the period (making the period first when it has
    no roll-up yet); False when that item is full."""
    sk, month = period_sk(period, shard), day[:7]
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    size = value_bytes(value)
    names = {"#v": VALUE_PREFIX + value, "#b": "bytes", "#f": "full"}
    for _ in range(3):
        try:
            _client().update_item(
                TableName=_table(),
                Key=key,
                UpdateExpression="SET #v = :zero ADD #b :size",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#v) AND attribute_not_exists(#f)"
                " AND #b <= :room",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":zero": {"L": [{"N": "0"}] * len(COUNTERS)},
                    ":size": {"N": str(size)},
                    ":room": {"N": str(ROLLUP_BUDGET - size)},
                },
            )
            return True
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
        item = _get(pk, sk, names["#v"])
        if item is None:
            if shard and _get(pk, period_sk(period, 0)) is not None:  # the first spill to this item: named first
                _client().update_item(
                    TableName=_table(),
                    Key={"pk": {"S": pk}, "sk": {"S": period_sk(period, 0)}},
                    UpdateExpression="ADD #s :s",
                    ExpressionAttributeNames={"#s": "spill"},
                    ExpressionAttributeValues={":s": {"NS": [str(shard)]}},
                )
                _put_if_absent(_rollup_item(dimension, month, period, shard, {}))
            else:
                _make_period(dimension, month, period, day)
            continue
        if names["#v"] in item:
            return True
        if "full" in item:
            return False
        if int(item.get("bytes", {}).get("N", "0")) > ROLLUP_BUDGET - size:
            _mark_full(pk, sk)
            return False
        # made (or given a spill item) by someone else since this update: add the value again
    raise StoreUnavailable("The funnel roll-up could not be prepared; the record is retried.")


def _get(pk: str, sk: str, *names: str) -> dict | None:
    projected = {f"#p{i}": name for i, name in enumerate(("pk", "full", "bytes", *names))}
    return (
        _client()
        .get_item(
            TableName=_table(),
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=True,
            ProjectionExpression=", ".join(projected),
            ExpressionAttributeNames=projected,
        )
        .get("Item")
    )


def _mark_full(pk: str, sk: str) -> None:
    _client().update_item(
        TableName=_table(),
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="SET #f = :t",
        ExpressionAttributeNames={"#f": "full"},
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )


def _put_if_absent(item: dict) -> None:
    try:
        _client().put_item(TableName=_table(), Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as error:
        if _code(error) != "ConditionalCheckFailedException":
            raise


def _place(rollups: list[tuple[str, str, str, str]], day: str) -> None:
    """Find (or give) each value its list in its periods' roll-ups: item 0, else its spill item, else none (both
    full: its counts stay in the day items). One BatchGetItem for what this process has not seen yet."""
    todo = [r for r in rollups if (_table(), r[0], r[2], r[3]) not in _where]
    if not todo:
        return
    names = {f"#v{i}": VALUE_PREFIX + r[3] for i, r in enumerate(todo)}
    keys = {(pk, period_sk(period, s)): None for pk, _d, period, value in todo for s in (0, spill_shard(value))}
    found: dict[tuple[str, str], dict] = {}
    for start in range(0, len(keys), BATCH_KEYS):
        chunk = list(keys)[start : start + BATCH_KEYS]
        pending: dict = {
            _table(): {
                "Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in chunk],
                "ProjectionExpression": ", ".join(["pk", "sk", *names]),
                "ExpressionAttributeNames": names,
            }
        }
        while pending:
            answer = _client().batch_get_item(RequestItems=pending)
            for item in answer.get("Responses", {}).get(_table(), []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            pending = answer.get("UnprocessedKeys") or {}
    if len(_where) > 50_000:  # a long-lived process forgets, and asks again
        _where.clear()
    for pk, dimension, period, value in todo:
        shards = (0,) if dimension == TREND else (0, spill_shard(value))
        where = next((s for s in shards if VALUE_PREFIX + value in found.get((pk, period_sk(period, s)), {})), None)
        if where is None:
            where = next((s for s in shards if _add_value(pk, dimension, day, period, value, s)), None)
        _where[(_table(), pk, period, value)] = where


def count_change(record_id: str, change: Change, now: float | None = None) -> bool:
    """Apply `change` once for the stream record `record_id`: True when counted now, False when it already was."""
    now = time.time() if now is None else now
    increments = change.increments()
    month, shard = change.day[:7], _shard(record_id)
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
    day_items: list[dict] = []
    rollups: list[tuple[str, str, str, str]] = []  # (pk, dimension, period, value)
    for dimension, value in {**change.values, TREND: TREND}.items():
        pk = counter_pk(dimension, month)
        numbers = {f"{value}{SEPARATOR}{name}": n for name, n in increments.items()}
        day_items.append({"Update": _add(pk, counter_sk(change.day, shard), dimension, change.day, numbers)})
        rollups.extend((pk, dimension, period, value) for period in (iso_week(change.day), month))
    try:
        for attempt in range(ATTEMPTS):
            _place(rollups, change.day)
            updates = []
            for pk, _dimension, period, value in rollups:
                where = _where.get((_table(), pk, period, value))
                if where is None:  # item 0 and the spill item full: the day items only, while that holds
                    check = {
                        "TableName": _table(),
                        "Key": {"pk": {"S": pk}, "sk": {"S": period_sk(period, spill_shard(value))}},
                        "ConditionExpression": "attribute_exists(#f)",
                        "ExpressionAttributeNames": {"#f": "full"},
                    }
                    updates.append(((pk, period, value), {"ConditionCheck": check}))
                    continue
                update = _increment(pk, period_sk(period, where), value, increments)
                if update is not None:
                    updates.append(((pk, period, value), {"Update": update}))
            # the conditional writes first: a transaction that fails its conditions has written nothing yet
            items = [{"Put": marker}, *(u for _r, u in updates), *day_items]
            try:
                _client().transact_write_items(TransactItems=items)
                return True
            except ClientError as error:
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False  # this record was counted before (a redelivery or a retried batch)
                if attempt == ATTEMPTS - 1:
                    raise StoreUnavailable("The funnel counters could not be written; the record is retried.") from None
                stale = False
                for i, code in enumerate(reasons):
                    if 0 < i <= len(updates) and code == "ConditionalCheckFailed":
                        pk, period, value = updates[i - 1][0]
                        _where.pop((_table(), pk, period, value), None)  # (rebuilt since, or full): place again
                        stale = True
                if not stale:
                    time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto
    except (BotoCoreError, ClientError) as error:
        raise StoreUnavailable("The funnel counters could not be written; the record is retried.") from error
    return False  # not reached


def _query(
    pk: str, first: str | None = None, last: str | None = None, keys_only: bool = False, consistent: bool = False
) -> Iterator[dict]:
    params: dict = {"TableName": _table(), "ExpressionAttributeValues": {":pk": {"S": pk}}}
    if consistent:
        params["ConsistentRead"] = True
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


def _rollup_numbers(item: dict) -> dict[str, dict[str, int]]:
    """value → counter → n of a roll-up item (its fixed-size lists)."""
    return {
        name[len(VALUE_PREFIX) :]: from_vector(int(n["N"]) for n in typed["L"])
        for name, typed in item.items()
        if name.startswith(VALUE_PREFIX) and "L" in typed
    }


def report_counters(
    dimension: str, start: date, end: date
) -> tuple[list[tuple[str, str, dict]], list[tuple[str, dict]]]:
    """The counters of a report of [start, end]: rows `(period, value, numbers)` of the dimension (whole months
    and week parts from roll-ups, edge days from day items; numbers of a subtracted period negated) and the
    weekly trend rows `(ISO week, numbers)`, read by exact key (`read_plan`) with BatchGetItem. A period
    without roll-up (never counted since roll-ups were made: before an upgrade) and a full roll-up shard are
    read from the period's day items, in a second BatchGetItem; unless it begins more than a day after its
    month's roll-up was made (`made` of the month's item 0, when the plan reads it: a month read minus the
    days outside the range, such as the days to come): the stream would have made it for any change there, so
    it holds nothing (the day: a stream's backlog at an upgrade). Item 0 of a period names its spill items
    (`spill`), read in that second BatchGetItem too."""
    groups, trend = read_plan(start, end, day_cost=SHARDS)
    plan = [(dimension, month, period, sign, False) for month, period, sign in groups]
    plan += [(TREND, month, period, 1, True) for month, period in trend]
    rows: list[tuple[str, str, dict]] = []
    weeks: list[tuple[str, dict]] = []

    def emit(entry: tuple, period: str, value: str, numbers: dict) -> None:
        _dim, _month, _period, sign, is_trend = entry
        if is_trend:
            weeks.append((period if "W" in period else iso_week(period), numbers))
        else:
            rows.append((period, value, {name: sign * n for name, n in numbers.items()}))

    def keys_of(entry: tuple) -> list[tuple[str, str]]:
        """Item 0 of a roll-up period (its spill items are read when it names them), every item of a day."""
        dim, month, period, _sign, _is_trend = entry
        shards = SHARDS if len(period) == 10 else 1
        return [(counter_pk(dim, month), period_sk(period, shard)) for shard in range(shards)]

    def day_keys(entry: tuple) -> list[tuple[str, str]]:
        pk = counter_pk(entry[0], entry[1])
        return [(pk, counter_sk(day, shard)) for day in period_days(entry[1], entry[2]) for shard in range(SHARDS)]

    try:
        found = _get_all({key for entry in plan for key in keys_of(entry)})

        def empty(dim: str, month: str, period: str) -> bool:
            made = found.get((counter_pk(dim, month), period_sk(month, 0)), {}).get("made", {}).get("S")
            return made is not None and period_days(month, period)[0] > str(date.fromisoformat(made) + ONE_DAY)

        rolled, missing = [], []  # roll-up periods with item 0; periods without (read from their day items)
        for entry in plan:
            dim, month, period, _sign, _is_trend = entry
            keys = keys_of(entry)
            if len(period) == 10:
                for key in keys:
                    for value, numbers in _numbers(found.get(key, {})).items():
                        emit(entry, period, value, numbers)
            elif keys[0] in found:
                rolled.append(entry)
            elif not empty(dim, month, period):
                missing.append(entry)
        spills = {}
        for entry in rolled:
            pk, sk = keys_of(entry)[0]
            named = found[(pk, sk)].get("spill", {}).get("NS", [])
            spills[entry] = [(pk, sk), *((pk, period_sk(entry[2], int(n))) for n in named)]
        more = {key for keys in spills.values() for key in keys[1:]} | {k for e in missing for k in day_keys(e)}
        found.update(_get_all(more - set(found)) if more else {})
        full: dict[tuple, set[int]] = {}  # period → its full spill items
        listed: dict[tuple, set[str]] = {}  # period → the values its roll-up holds
        for entry in rolled:
            for key in spills[entry]:
                item = found.get(key, {})
                if key != spills[entry][0] and "full" in item:
                    full.setdefault(entry, set()).add(int(key[1].rsplit("#", 1)[1]))
                for value, numbers in _rollup_numbers(item).items():
                    listed.setdefault(entry, set()).add(value)
                    emit(entry, entry[2], value, numbers)
        # values that found item 0 and their spill item full are in the day items only (a third read, then)
        wanted = {key for entry in full for key in day_keys(entry)} - set(found)
        found.update(_get_all(wanted) if wanted else {})
        for entry in [*missing, *full]:
            shards, names = full.get(entry), listed.get(entry, set())
            for key in day_keys(entry):
                for value, numbers in _numbers(found.get(key, {})).items():
                    if shards is None or (value not in names and spill_shard(value) in shards):
                        emit(entry, key[1][:10], value, numbers)
    except (ClientError, BotoCoreError) as error:
        raise StoreUnavailable("The funnel counters could not be read; retry shortly.") from error
    return rows, weeks


def _get_all(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The items of `keys` that exist, by key."""
    wanted = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys]
    return {(item["pk"]["S"], item["sk"]["S"]): item for item in _batch_get(wanted)}


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


def write_counters(rows: Iterable[tuple[str, str, int, dict[str, dict[str, int]]]], rollups: bool = True) -> int:
    """Put counter items with absolute numbers: `(dimension, day, shard, {value: {counter: n}})` (rebuild, bench;
    include dimension `all` for the trend), then the month and week-part roll-ups summed from those rows: the
    rows must hold every day of the months they touch (rebuild clears those months first). `rollups=False`
    writes day items only, as versions before roll-ups did (upgrade tests)."""
    sums: dict[tuple[str, str, str], dict[str, dict[str, int]]] = {}

    def day_item(dimension: str, day: str, shard: int, by_value: dict) -> dict:
        item = {
            "pk": {"S": counter_pk(dimension, day[:7])},
            "sk": {"S": counter_sk(day, shard)},
            "entity": {"S": "funnel_counter"},
            "dim": {"S": dimension},
            "day": {"S": day},
        }
        for value, numbers in by_value.items():
            for name, n in numbers.items():
                item[f"{value}{SEPARATOR}{name}"] = {"N": str(n)}
        return {"PutRequest": {"Item": item}}

    def requests() -> Iterator[dict]:
        for dimension, day, shard, by_value in rows:
            yield day_item(dimension, day, shard, by_value)
            for period in (iso_week(day), day[:7]) if rollups else ():
                into_period = sums.setdefault((dimension, day[:7], period), {})
                for value, numbers in by_value.items():
                    into = into_period.setdefault(value, {})
                    for name, n in numbers.items():
                        into[name] = into.get(name, 0) + n
        for (dimension, month, period), by_value in sums.items():
            for item in _rollup_items(dimension, month, period, by_value):
                yield {"PutRequest": {"Item": item}}

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
