"""On AWS the scoring model is the SSM parameter's YAML: an edit reaches warm functions within the max age; a
parameter that cannot be read answers events 503 (senders retry) while captures still store leads (unscored);
a bad model is refused naming the parameter, the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
import yaml
from aws_lambda_powertools.utilities import parameters

from leadflow.config import settings
from leadflow.errors import ScoringModelInvalid
from leadflow.scoring_model import DEFAULT_MODEL_FILE, MAX_AGE_SECONDS, current_model
from tests.integration.test_config_refresh import Clock, _reset_parameter_caches

PARAMETER = "/leadflow/dev/scoring"
HOT = {"email": "hot@bigsoft.io", "job_title": "CTO", "company_size": "1000", "industry": "software", "country": "US"}


def _strict() -> str:
    doc = yaml.safe_load(DEFAULT_MODEL_FILE.read_text())
    doc["qualification"]["mql"]["min_behaviour"] = 500
    return yaml.safe_dump(doc, allow_unicode=True)


@pytest.fixture
def on_aws(aws, monkeypatch):
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name=PARAMETER, Type="String", Tier="Advanced", Value=_strict())
    monkeypatch.setenv("LEADFLOW_SCORING_PARAMETER", PARAMETER)
    monkeypatch.delenv("LEADFLOW_SCORING_MODEL_FILE", raising=False)
    clock = Clock()
    monkeypatch.setattr(parameters.base, "datetime", clock.datetime())
    settings.cache_clear()
    _reset_parameter_caches()
    yield ssm, clock
    settings.cache_clear()
    _reset_parameter_caches()


def _meeting(api, lead_id: str, msg: str):
    event = {"type": "meeting_booked", "lead_id": lead_id, "occurred_at": datetime.now(UTC).isoformat()}
    return api.post_events([event, {**event, "type": "webinar_attended"}], msg)


def test_the_model_in_ssm_decides_and_an_edit_is_live_after_the_max_age(api, on_aws):
    ssm, clock = on_aws
    lead_id = api.post_form("website", HOT).json["lead_id"]
    # Given the strict model in SSM: strong engagement does not qualify
    assert _meeting(api, lead_id, "msg_strict").status == 202
    assert api.request("GET", f"/v1/leads/{lead_id}").json["lifecycle_stage"] == "lead"
    # When marketing ops put the default model and the max age passes
    ssm.put_parameter(Name=PARAMETER, Value=DEFAULT_MODEL_FILE.read_text(), Overwrite=True)
    clock.advance(MAX_AGE_SECONDS + 1)
    # Then the next event qualifies the lead under it
    assert _meeting(api, lead_id, "msg_default").status == 202
    assert api.request("GET", f"/v1/leads/{lead_id}").json["lifecycle_stage"] == "mql"


def test_a_model_that_cannot_be_read_is_503_for_events_and_captures_still_store(api, on_aws):
    ssm, clock = on_aws
    lead_id = api.post_form("website", HOT).json["lead_id"]
    ssm.delete_parameter(Name=PARAMETER)
    clock.advance(MAX_AGE_SECONDS + 1)
    reply = _meeting(api, lead_id, "msg_unreadable")
    assert reply.status == 503 and reply.headers["retry-after"].isdigit()
    assert reply.headers["content-type"] == "application/problem+json"
    assert api.post_form("website", {"email": "still@captured.io"}).status == 202


def test_a_bad_model_is_refused_naming_parameter_line_and_field(api, on_aws):
    ssm, clock = on_aws
    broken = DEFAULT_MODEL_FILE.read_text().replace("min_behaviour: 50", "min_behaviour: fifty")
    ssm.put_parameter(Name=PARAMETER, Value=broken, Overwrite=True)
    clock.advance(MAX_AGE_SECONDS + 1)
    with pytest.raises(ScoringModelInvalid) as refused:
        current_model()
    line = broken.splitlines().index("    min_behaviour: fifty") + 1
    assert refused.value.problems == [
        f"ssm:{PARAMETER}:{line}: qualification.mql.min_behaviour: 'fifty' is not of type 'integer'"
    ]
    lead_id = api.post_form("website", HOT).json["lead_id"]
    assert _meeting(api, lead_id, "msg_broken").status == 503
