"""Ad click repository: clicks announced by Baidu/Tencent click monitoring, one item each.

A callback costs one conditional PutItem: the first delivery of a click id stores it, a redelivery finds it
there and changes nothing. Capture reads click items in the BatchGetItem it already makes
(`store.leads.lookup_keys`), so attributing a lead to an ad costs no extra call.
"""

from __future__ import annotations

from pynamodb.exceptions import PutError, PynamoDBException

from leadflow.domain.attribution import ad_click_key
from leadflow.errors import StoreUnavailable
from leadflow.store.models import CLICK_SK, ClickItem

CLICK_FIELDS = ("callback_url", "account_id", "campaign_id", "adgroup_id", "ad_id", "request_id", "click_time")


def put_click(click: dict, *, created_at: str, expires_at: int) -> bool:
    """Store an announced click once; True when it is new, False when it was already there."""
    item = ClickItem(
        ad_click_key(click["platform"], click["click_id"]),
        CLICK_SK,
        entity="click",
        platform=click["platform"],
        click_id=click["click_id"],
        created_at=created_at,
        expires_at=expires_at,
        **{name: click[name] for name in CLICK_FIELDS if click.get(name) not in (None, "")},
    )
    try:
        item.save(condition=ClickItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False  # a redelivery: the first delivery's item stands
        raise StoreUnavailable("The click store did not take the write; retry shortly.") from exc
    except PynamoDBException as exc:
        raise StoreUnavailable("The click store did not take the write; retry shortly.") from exc
    return True


def click_view(item: ClickItem) -> dict:
    """A stored click as a plain dict (what attribution attaches to a touch)."""
    view = {"platform": item.platform, "click_id": item.click_id}
    view.update({name: getattr(item, name) for name in CLICK_FIELDS if getattr(item, name, None)})
    return view
