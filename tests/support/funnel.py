"""Generated funnel traffic and the test's own count of what it sent (independent of leadflow.domain.funnel).

`Traffic.run()` captures leads through the real form route (first touch, sometimes a second touch with other
UTMs, sometimes only a Zhihu referrer for the UTM rules), assigns owners the way routing would (before the
MQL move) and moves stages through the lifecycle service at chosen times (twice in one day for some). Every
stage a lead enters is written down with the values the report should credit it to at that moment.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import boto3

from leadflow.services import leads
from leadflow.store.models import LEAD_SK, LeadItem, lead_pk
from leadflow_local.stream_delivery import lambda_record, matches_filters
from leadflow_local.template import load_template, stream_mappings

SOURCES = ["google", "baidu", "linkedin", "newsletter"]
MEDIUMS = ["cpc", "social", "email"]
CAMPAIGNS = ["q4-launch", "webinar-nov", "brand"]
OWNERS = [("u-ana", "emea"), ("u-bo", "apac"), ("u-cy", "apac")]
FUNNEL = ["lead", "mql", "sql", "opportunity", "customer"]
# (moves as (stage, day offset, hour)) — every path the funnel allows that the report must count right
PATHS = [
    [],
    [("mql", 1, 9)],
    [("mql", 1, 9), ("sql", 1, 16)],  # twice in one day
    [("mql", 1, 9), ("sql", 2, 11), ("customer", 3, 10)],
    [("disqualified", 2, 12)],
    [("sql", 2, 10)],  # skips mql: it still got that far
    [("mql", 1, 8), ("recycled", 2, 9), ("lead", 3, 9)],  # recycled and back: enters lead again
]


@dataclass
class Entry:
    day: str
    stage: str
    values: dict[str, str]


@dataclass
class Traffic:
    api: object
    seed: int = 7
    leads: int = 40
    today: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    entries: list[Entry] = field(default_factory=list)
    changes: int = 0  # lead creations and stage moves: the stream records that must change the counters

    def run(self) -> Traffic:
        rng = random.Random(self.seed)
        for i in range(self.leads):
            first = self._touch(rng, zhihu=i % 9 == 0)
            fields = {"email": f"buyer{i}.{self.seed}@acme{i % 7}.io", "company": "Acme", **first["sent"]}
            reply = self.api.post_form("website", fields)
            assert reply.status == 202, reply.body
            lead_id = reply.json["lead_id"]
            last = first
            if rng.random() < 0.5:  # a second touch, with campaign data: it becomes the last touch
                second = self._touch(rng, zhihu=False)
                again = self.api.post_form("website", {"email": fields["email"], **second["sent"]})
                assert again.status == 202 and again.json["lead_id"] == lead_id, again.body
                last = second
            created = datetime.now(UTC)
            owner = {"owner": "(none)", "team": "(none)"}
            self.entries.append(Entry(created.date().isoformat(), "lead", self._values(first, first, owner)))
            self.changes += 1
            stage = "lead"
            for target, day, hour in rng.choice(PATHS):
                if target == "mql" and rng.random() < 0.6:  # routing assigns an owner before the MQL move
                    owner_id, team = rng.choice(OWNERS)
                    self._assign(lead_id, owner_id, team)
                    owner = {"owner": owner_id, "team": team}
                at = self.today + timedelta(days=day, hours=hour)
                leads.set_stage(lead_id, target, "test traffic", source="test", now=at)
                self.changes += 1
                for entered in self._entered(stage, target):
                    self.entries.append(Entry(at.date().isoformat(), entered, self._values(first, last, owner)))
                stage = target
        return self

    @staticmethod
    def _entered(old: str, new: str) -> list[str]:
        if old in FUNNEL and new in FUNNEL:
            return FUNNEL[FUNNEL.index(old) + 1 : FUNNEL.index(new) + 1]
        return [new]

    @staticmethod
    def _touch(rng: random.Random, zhihu: bool) -> dict:
        if zhihu:  # no UTM of its own: the shipped rule names it
            return {
                "sent": {"referrer": "https://www.zhihu.com/question/123", "page_url": "https://www.example.com/"},
                "utm": {"utm_source": "zhihu", "utm_medium": "social", "utm_campaign": "(none)"},
            }
        utm = {
            "utm_source": rng.choice(SOURCES),
            "utm_medium": rng.choice(MEDIUMS),
            "utm_campaign": rng.choice(CAMPAIGNS),
        }
        return {"sent": dict(utm), "utm": utm}

    @staticmethod
    def _values(first: dict, last: dict, owner: dict) -> dict[str, str]:
        values = {"first.source": "form:website", "last.source": "form:website", **owner}
        for name in ("utm_source", "utm_medium", "utm_campaign"):
            values[f"first.{name}"] = first["utm"][name]
            values[f"last.{name}"] = last["utm"][name]
        return values

    @staticmethod
    def _assign(lead_id: str, owner_id: str, team: str) -> None:
        item = LeadItem.get(lead_pk(lead_id), LEAD_SK, consistent_read=True)
        item.update(actions=[LeadItem.owner.set({"id": owner_id, "name": owner_id, "team": team})])

    def expected(self, dimension: str, first_day: str, last_day: str) -> dict[str, Counter]:
        """The test's own count: group value → stage → entries in [first_day, last_day]."""
        out: dict[str, Counter] = defaultdict(Counter)
        for entry in self.entries:
            if first_day <= entry.day <= last_day:
                out[entry.values[dimension]][entry.stage] += 1
        return out


@lru_cache(maxsize=1)
def journey_router_mapping():
    (mapping,) = [m for m in stream_mappings(load_template()) if m.function_id == "JourneyRouterFunction"]
    return mapping


def stream_records(table: str, **client_kwargs) -> list[dict]:
    """Every record of the table's stream that the JourneyRouterFunction's filter lets through, as Lambda
    delivers them (oldest first per shard)."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", **client_kwargs)
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", **client_kwargs)
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    mapping = journey_router_mapping()
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            batch = [lambda_record(raw, arn) for raw in page["Records"]]
            records += [r for r in batch if matches_filters(mapping.filters, r)]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records
