"""Demo traffic for Meta Lead Ads: a signed `leadgen` delivery, its redelivery, and a tampered copy.

`shots(url, rng)` gives the requests `leadflow demo` can send, signed with the development app secret of
infra/local/secrets.json (`X-Hub-Signature-256` over the exact bytes). The stack answers 200 at once and
queues the leadgen ids; the fetch function then reads each lead from the Graph API at
LEADFLOW_META_GRAPH_URL. Locally there is no Graph API: unless LEADFLOW_META_GRAPH_URL points `leadflow up`
at one (e.g. a fake like tests/support/fake_graph.py), the fetch is refused or times out, is retried, and
ends in the dead-letter queue with its reason (`leadflow dlq list --endpoint-url <embedded AWS>`), so
these leads do not show in the funnel. No lead data is faked inside the product.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time

from leadflow_local.demo import SECRETS, Shot

PAGE_ID = "102938475610293"


def _signed(body: bytes) -> dict[str, str]:
    secret = json.loads(SECRETS.read_text())["webhooks/meta"]["app_secret"].encode()
    return {
        "content-type": "application/json",
        "x-hub-signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
    }


def shots(url: str, rng: random.Random) -> list[Shot]:
    now = int(time.time())
    leadgen_ids = [str(rng.randrange(10**14, 10**15)) for _ in range(2)]
    changes = [
        {
            "field": "leadgen",
            "value": {
                "leadgen_id": leadgen_id,
                "form_id": "564738291056473",
                "page_id": PAGE_ID,
                "ad_id": "238475610293847",
                "adgroup_id": "238475610293846",
                "created_time": now,
            },
        }
        for leadgen_id in leadgen_ids
    ]
    body = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": now, "changes": changes}]}).encode()
    tampered = body.replace(leadgen_ids[0].encode(), leadgen_ids[0][::-1].encode())
    return [
        Shot("meta", "POST", "/v1/webhooks/meta", body, _signed(body)),
        Shot("meta", "POST", "/v1/webhooks/meta", body, _signed(body), kind="redelivery"),
        Shot("meta", "POST", "/v1/webhooks/meta", tampered, _signed(body), kind="bad"),
    ]
