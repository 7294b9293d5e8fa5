"""What the click-monitoring sources (`baidu`, `tencent`) share: the query string the platform called us
with, its macros, and the click document they produce.

The platforms substitute macros (`{{CLICK_ID}}`, `__CLICK_ID__`) into the monitoring URL an operator
configured; a macro the platform does not fill for this ad arrives empty or unreplaced (Tencent documents
both), and counts as absent.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from leadflow import schemas
from leadflow.domain.attribution import iso
from leadflow.errors import MalformedBody
from leadflow.sources.base import parse_time
from leadflow.web import Request

_MACRO = re.compile(r"^(__[A-Z0-9_]+__|\{\{[A-Z0-9_]+\}\})$")
MAX_PARAMS = 200


def query_params(request: Request) -> dict[str, str]:
    """The query parameters as sent (first value of a repeated name), unreplaced macros and blanks dropped."""
    try:
        pairs = parse_qsl(request.raw_query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError as exc:
        raise MalformedBody("The query string has too many parameters.") from exc
    params: dict[str, str] = {}
    for name, value in pairs:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedBody("The query string is not valid UTF-8.") from exc
        if value.strip() and not _MACRO.match(value.strip()):
            params.setdefault(name, value)
    return params


def click_document(platform: str, schema: str, params: dict[str, str], names: dict[str, tuple[str, ...]]) -> dict:
    """The announced click: `names` maps each click field to the query names that may carry it."""
    schemas.check(schema, params)  # 422 with the query names, e.g. click_id "is required"
    click = {"platform": platform}
    for field, candidates in names.items():
        value = next((params[name] for name in candidates if params.get(name)), None)
        if value is not None:
            click[field] = value if field == "click_id" else value.strip()  # click ids: exactly as sent
    at = parse_time(click.get("click_time"))
    if at is not None:
        click["click_time"] = iso(at)
    else:
        click.pop("click_time", None)
    return click
