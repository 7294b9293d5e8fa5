"""Least privilege in template.yaml, checked against declared allow-lists.

- Secrets: each function reads only the secrets its code names (the public capture functions can never reach
  CRM, ad or callback secrets; only the callback function reaches callbacks/*). Secrets Manager ARNs are
  the name, "-" and 6 random characters, so grants are written `<name>-??????` and matched here the way
  IAM matches them (`*` any run, `?` one character) against realistic ARNs.
- DynamoDB: each function's actions are within its allow-list, on the table only, never a wildcard.
  tests/integration/test_grants_cover_calls.py checks the other direction: what the code calls is granted.
- SSM: each function reads only the configuration parameters its code loads (SSM_ALLOWED), each grant is the
  parameter's real ARN (a generated name has no leading "/", so `parameter/<name>`) and the function's
  environment names that parameter, so the loader (leadflow.yaml_config.config_text) finds it.
- Routes: every HttpApi route outside PUBLIC_ROUTES requires IAM auth, so a route added later is never
  public by accident.
"""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from leadflow.sources import CALLBACK_PLATFORMS, WEBHOOK_PROVIDERS
from leadflow.sources.captcha import DEFAULT_SECRET as CAPTCHA_SECRET
from leadflow_local.apigw import load_function
from leadflow_local.template import http_routes, load_template

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "AWS::Serverless::Function"

# Concrete values for the template's substitutions, to build the ARNs IAM would compare
SUBSTITUTIONS = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "SecretsPrefix": "leadflow/",
    "Stage": "prod",
}


def _module_secret(module: str) -> str | None:
    return getattr(importlib.import_module(module), "SECRET", None)


def _module_secret_of_function(folder: str) -> str:
    """The secret a function's handler names (functions/<folder>/app.py `SECRET`)."""
    module, _ = load_function(f"functions/{folder}/")
    return module.SECRET


EVENTS_SECRET = _module_secret_of_function("capture_events")
WEBHOOK_SECRETS = {s for s in map(_module_secret, WEBHOOK_PROVIDERS.values()) if s}
CALLBACK_SECRETS = {s for s in map(_module_secret, CALLBACK_PLATFORMS.values()) if s}
POINTER_SECRETS = {
    _module_secret(m) for m in WEBHOOK_PROVIDERS.values() if hasattr(importlib.import_module(m), "parse_pointers")
}

# function → the secret names its code reads (each must be granted)
SECRETS_USED: dict[str, set[str]] = {
    "HealthFunction": set(),
    "CaptureFormFunction": {CAPTCHA_SECRET},
    "CaptureWebhookFunction": WEBHOOK_SECRETS,
    "FetchLeadsFunction": POINTER_SECRETS,
    "CaptureCallbackFunction": CALLBACK_SECRETS,
    "CaptureEventsFunction": {EVENTS_SECRET},
    "LeadsApiFunction": set(),
    "FunnelReportFunction": set(),
    "CrmPushRouterFunction": set(),
    "HubSpotPushFunction": {"crm/hubspot"},
    "SalesforcePushFunction": {"crm/salesforce"},
    "WebhookPushFunction": {"crm/webhook"},
    # conversions out: each platform's function reads its own ads/* secret (the module's SECRET)
    "GoogleAdsConversionFunction": {_module_secret("leadflow.ads.google_ads")},
    "MetaConversionFunction": {_module_secret("leadflow.ads.meta")},
    "BaiduConversionFunction": {_module_secret("leadflow.ads.baidu")},
    "TencentConversionFunction": {_module_secret("leadflow.ads.tencent")},
    "RunJourneyFunction": {"journeys/webhook"},
    "JourneyRouterFunction": set(),
    "RouteLeadsFunction": set(),
    "RoutingSlaFunction": set(),
    # CRM feedback in: HubSpot's app client secret (in `crm/hubspot`, the contract's one HubSpot secret) and the
    # generic route's Standard Webhooks secret; the retry function reads no secret
    "CrmFeedbackFunction": {
        _module_secret("leadflow.sources.crm_hubspot"),
        _module_secret("leadflow.sources.crm_generic"),
    },
    "CrmFeedbackRetryFunction": set(),
}
# function → secret name patterns it may be granted (the only namespaces it may reach at all)
SECRETS_ALLOWED: dict[str, tuple[str, ...]] = {
    "HealthFunction": (),
    "CaptureFormFunction": ("forms/*",),
    "CaptureWebhookFunction": tuple(f"{name}-??????" for name in sorted(WEBHOOK_SECRETS)),
    "FetchLeadsFunction": tuple(f"{name}-??????" for name in sorted(POINTER_SECRETS)),
    "CaptureCallbackFunction": tuple(f"{name}-??????" for name in sorted(CALLBACK_SECRETS)),
    "CaptureEventsFunction": (f"{EVENTS_SECRET}-??????",),
    "LeadsApiFunction": (),
    "FunnelReportFunction": (),
    # CRM secrets reach only the push function of their own target
    "CrmPushRouterFunction": (),
    "HubSpotPushFunction": ("crm/hubspot-??????",),
    "SalesforcePushFunction": ("crm/salesforce-??????",),
    "WebhookPushFunction": ("crm/webhook-??????",),
    # ad platform secrets reach only the conversion function of their own platform
    "GoogleAdsConversionFunction": ("ads/google-??????",),
    "MetaConversionFunction": ("ads/meta-??????",),
    "BaiduConversionFunction": ("ads/baidu-??????",),
    "TencentConversionFunction": ("ads/tencent-??????",),
    "RunJourneyFunction": ("journeys/webhook-??????",),
    "JourneyRouterFunction": (),
    "RouteLeadsFunction": (),
    "RoutingSlaFunction": (),
    "CrmFeedbackFunction": ("crm/hubspot-??????", "crm/generic-??????"),
    "CrmFeedbackRetryFunction": (),
}
# secrets a public capture function must never be able to read (realistic names of other parts of the system)
FOREIGN_SECRETS = ("crm/hubspot", "crm/salesforce", "crm/webhook", "ads/google", "ads/meta", "events")

# lookup, merge read, the transaction's Puts and its checks that conflicting owners are live (erasure); Query
# and DeleteItem only on ANON#<email> partitions (IAM dynamodb:LeadingKeys): adopting anonymous events
_CAPTURE = {"GetItem", "BatchGetItem", "PutItem", "ConditionCheckItem", "Query", "DeleteItem"}
DYNAMODB_ALLOWED: dict[str, set[str]] = {
    "HealthFunction": set(),
    "CaptureFormFunction": _CAPTURE,
    "CaptureWebhookFunction": _CAPTURE,
    "FetchLeadsFunction": _CAPTURE,
    "CaptureCallbackFunction": {"PutItem"},  # one conditional put per click
    # the lead, its journey map, a timeline entry, the send ledger; Query: a branch on a past event
    "RunJourneyFunction": {"GetItem", "UpdateItem", "PutItem", "Query"},
    "JourneyRouterFunction": {"GetItem", "UpdateItem", "PutItem"}  # the same, to enrol and to stop
    # funnel counters (their own table): a record's marker and counters in one transaction; roll-ups: where a
    # value's list is (BatchGetItem), a new period's day items summed (Query)
    | {f"FunnelTable:{a}" for a in ("UpdateItem", "PutItem", "ConditionCheckItem", "GetItem", "BatchGetItem", "Query")},
    # per event: the read, the lead's transaction (puts, checks); anonymous events: Query/DeleteItem on ANON#;
    # a journey waiting for the event: its journey map (UpdateItem) and timeline entry
    "CaptureEventsFunction": _CAPTURE | {"UpdateItem"},
    # reads, and erasure as a retryable procedure (markers, tombstones, deletes, transactions)
    "LeadsApiFunction": {
        "GetItem",
        "BatchGetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "ConditionCheckItem",
    },
    "FunnelReportFunction": {"FunnelTable:Query", "FunnelTable:BatchGetItem"},  # counters by key, spend by key range
    "CrmPushRouterFunction": set(),  # reads the stream only
    # current versions of the leads, the crm.<target> write-back, push timeline entries
    "HubSpotPushFunction": {"BatchGetItem", "UpdateItem", "PutItem"},
    "SalesforcePushFunction": {"BatchGetItem", "UpdateItem", "PutItem"},
    "WebhookPushFunction": {"GetItem", "BatchGetItem", "UpdateItem", "PutItem"},  # and the target's disabled state
    # the routing state (read, put at its version), the lead's owner (update) and its timeline entry (put)
    "RouteLeadsFunction": {"GetItem", "PutItem", "UpdateItem"},
    # the same for a reassignment; recycling is the lifecycle service's transaction (lead put, stage entry)
    # and its answer, the lead JSON (a Query of the lead's conflicts)
    "RoutingSlaFunction": {"GetItem", "PutItem", "UpdateItem", "Query"},
    # the leads, each conversion's record (conditional PutItem claim, UpdateItem outcome), timeline entries
    "GoogleAdsConversionFunction": {"BatchGetItem", "PutItem", "UpdateItem"},
    "MetaConversionFunction": {"BatchGetItem", "PutItem", "UpdateItem"},
    "BaiduConversionFunction": {"BatchGetItem", "PutItem", "UpdateItem"},
    "TencentConversionFunction": {"BatchGetItem", "PutItem", "UpdateItem"},
    # per CRM event: the read (delivery + links), the lead, its transaction (puts), link flags (UpdateItem)
    "CrmFeedbackFunction": {"GetItem", "BatchGetItem", "PutItem", "UpdateItem"},
    # the same, plus the kept events: Query and DeleteItem only on CRMPENDING# partitions (dynamodb:LeadingKeys)
    "CrmFeedbackRetryFunction": {"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query", "DeleteItem"},
}

PUBLIC_ROUTES = {
    ("GET", "/health"),
    ("POST", "/v1/forms/{form_id}"),
    ("OPTIONS", "/v1/forms/{form_id}"),
    ("POST", "/v1/webhooks/{provider}"),
    ("GET", "/v1/webhooks/{provider}"),  # the providers' subscription checks
    ("OPTIONS", "/v1/webhooks/{provider}"),  # hubspot-forms CORS preflight
    ("GET", "/v1/callbacks/{platform}"),
    ("POST", "/v1/events"),  # Standard Webhooks signature (secret `events`)
    ("POST", "/v1/crm/{crm}/events"),  # HubSpot signature v3 (`crm/hubspot`) / Standard Webhooks (`crm/generic`)
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


# ------------------------------------------------------------------------------------------- helpers
def _functions(template: dict) -> list[str]:
    return [name for name, r in template["Resources"].items() if r["Type"] == FUNCTION]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _statements(template: dict, function: str) -> list[dict]:
    """Every policy statement of a function; anything the test cannot see (policy templates, managed
    policies, a role of its own) fails here, so no grant escapes these checks."""
    props = template["Resources"][function].get("Properties", {})
    assert "Role" not in props, f"{function}: a role of its own bypasses these checks"
    statements = []
    for policy in props.get("Policies") or []:
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, f"{function}: non-inline policy {policy}"
        statements += policy["Statement"]
    for statement in statements:
        assert statement.get("Effect") == "Allow" and "NotAction" not in statement and "NotResource" not in statement
    return statements


def _resolve(value: Any) -> str:
    """A Resource as the ARN string CloudFormation would produce (GetAtt kept as a marker)."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return re.sub(
            r"\$\{([^}]+)\}", lambda m: SUBSTITUTIONS.get(m.group(1), "${" + m.group(1) + "}"), value["Fn::Sub"]
        )
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return "GetAtt:" + (".".join(target) if isinstance(target, list) else target)
    raise AssertionError(f"unexpected resource form {value}")


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` exactly one (case sensitive)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _grants(statement: dict, action: str) -> bool:
    return any(_iam_match(a, action) for a in _as_list(statement["Action"]))


def _secret_grants(template: dict, function: str) -> list[str]:
    return [
        _resolve(resource)
        for statement in _statements(template, function)
        if _grants(statement, "secretsmanager:GetSecretValue")
        for resource in _as_list(statement["Resource"])
    ]


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadflow/prod/{name}-{suffix}"


def _can_read(grants: list[str], name: str, suffix: str = "Ab12Cd") -> bool:
    arn = SECRET_ARN.format(name=name, suffix=suffix)
    return any(_iam_match(grant, arn) for grant in grants)


def dynamodb_actions(template: dict, function: str) -> set[str]:
    """The function's DynamoDB actions: `Action` on the leads table, `FunnelTable:Action` on the funnel table."""
    actions = set()
    tables = {"LeadsTable": "", "FunnelTable": "FunnelTable:"}
    for statement in _statements(template, function):
        for action in _as_list(statement["Action"]):
            if action == "*" or action.lower().startswith("dynamodb:"):
                assert "*" not in action and "?" not in action, f"{function}: wildcard action {action}"
                resource = statement["Resource"]
                table = resource.get("Fn::GetAtt", [None])[0] if isinstance(resource, dict) else None
                assert resource == {"Fn::GetAtt": [table, "Arn"]} and table in tables, (
                    f"{function}: {action} on {resource}, not only the leads or the funnel table"
                )
                actions.add(tables[table] + action.split(":", 1)[1])
    return actions


def test_the_funnel_counters_have_their_own_table_off_the_leads_stream(template):
    # Given the funnel table: no stream (a counter write is no record for the leads stream's readers), kept
    funnel = template["Resources"]["FunnelTable"]
    assert "StreamSpecification" not in funnel["Properties"] and funnel["DeletionPolicy"] == "Retain"
    assert funnel["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    # and every function is told its name, and only the counting router and the report may touch it
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["LEADFLOW_FUNNEL_TABLE_NAME"] == {"Ref": "FunnelTable"}
    touching = {
        f for f in _functions(template) if any(a.startswith("FunnelTable:") for a in dynamodb_actions(template, f))
    }
    assert touching == {"JourneyRouterFunction", "FunnelReportFunction"}


def unprotected_routes(template: dict) -> list[tuple[str, str, str]]:
    """Routes outside PUBLIC_ROUTES that do not require IAM auth, or hang off an API other than HttpApi."""
    found = []
    for method, path, function, _code, authorizer in http_routes(template):
        if (method, path) not in PUBLIC_ROUTES and authorizer != "AWS_IAM":
            found.append((method, path, function))
    for function in _functions(template):
        for name, event in (template["Resources"][function]["Properties"].get("Events") or {}).items():
            api = (event.get("Properties") or {}).get("ApiId")
            if event.get("Type") == "HttpApi" and api != {"Ref": "HttpApi"}:
                found.append(("(implicit API)", name, function))  # SAM's implicit API has no IAM authorizer
    return found


# --------------------------------------------------------------------------------------------- secrets
def test_every_function_is_declared_in_the_allow_lists(template):
    # Given the template's functions / Then each has a declared secret and DynamoDB allow-list
    assert set(_functions(template)) == set(SECRETS_ALLOWED) == set(DYNAMODB_ALLOWED) == set(SECRETS_USED)


@pytest.mark.parametrize("function", sorted(SECRETS_ALLOWED))
def test_each_function_is_granted_exactly_its_declared_secret_patterns(template, function):
    # When the function's secret grants are read
    grants = _secret_grants(template, function)
    prefix = SECRET_ARN.split("{name}")[0]

    # Then every grant is one of its declared patterns under this stage's prefix (no "*" over the stage)
    assert sorted(grants) == sorted(prefix + pattern for pattern in SECRETS_ALLOWED[function]), function


@pytest.mark.parametrize("function", sorted(SECRETS_USED))
def test_each_function_can_read_the_secrets_its_code_names(template, function):
    grants = _secret_grants(template, function)
    # Then each secret the code reads resolves (whatever its 6-character suffix)
    for name in SECRETS_USED[function]:
        assert _can_read(grants, name), f"{function} cannot read {name}"
        assert _can_read(grants, name, suffix="zZ9-_x"), f"{function} cannot read {name}"


@pytest.mark.parametrize("function", sorted(SECRETS_ALLOWED))
def test_no_function_reaches_secrets_outside_its_own_namespace(template, function):
    grants = _secret_grants(template, function)
    others = set(FOREIGN_SECRETS) - SECRETS_USED[function]  # `events` is foreign to all but its own function
    if function != "CaptureCallbackFunction":
        others |= CALLBACK_SECRETS | {"callbacks/new-platform"}
    if function not in ("CaptureWebhookFunction", "FetchLeadsFunction"):
        others |= WEBHOOK_SECRETS
    if function != "CaptureFormFunction":
        others.add(CAPTCHA_SECRET)
    if function == "FetchLeadsFunction":
        others |= WEBHOOK_SECRETS - POINTER_SECRETS  # it fetches from APIs; it verifies nothing
    # Then none of them is readable, nor a look-alike that only shares a prefix with a granted name
    readable = sorted(name for name in others if _can_read(grants, name))
    assert readable == [], f"{function} can read {readable}"
    lookalikes = [f"{name}-extra" for name in SECRETS_USED[function] if not name.startswith("forms/")]
    assert not [name for name in lookalikes if _can_read(grants, name)], f"{function} reaches look-alikes"


def test_the_secret_check_catches_a_stage_wide_grant(template):
    # Given the webhook function granted every secret of the stage (the old `${Stage}/*` statement)
    widened = copy.deepcopy(template)
    statements = widened["Resources"]["CaptureWebhookFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append(
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
                "${SecretsPrefix}${Stage}/*"
            },
        }
    )
    # When its grants are read / Then the CRM secret is reachable, so the checks above would fail
    assert _can_read(_secret_grants(widened, "CaptureWebhookFunction"), "crm/hubspot")


# -------------------------------------------------------------------------------------------- DynamoDB
@pytest.mark.parametrize("function", sorted(DYNAMODB_ALLOWED))
def test_each_function_has_only_its_allowed_dynamodb_actions_on_the_table(template, function):
    # When the function's DynamoDB actions are read (wildcards and other resources fail inside)
    actions = dynamodb_actions(template, function)

    # Then they are within its allow-list
    assert actions <= DYNAMODB_ALLOWED[function], f"{function}: {sorted(actions - DYNAMODB_ALLOWED[function])}"


def test_the_dynamodb_check_refuses_a_wildcard(template):
    # Given a function granted dynamodb:*
    widened = copy.deepcopy(template)
    statements = widened["Resources"]["CaptureFormFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append({"Effect": "Allow", "Action": "dynamodb:*", "Resource": {"Fn::GetAtt": ["LeadsTable", "Arn"]}})
    # Then the check refuses it
    with pytest.raises(AssertionError, match="wildcard"):
        dynamodb_actions(widened, "CaptureFormFunction")


# -------------------------------------------------------------------------------------- Step Functions
_EXECUTIONS = "arn:aws:states:eu-west-1:123456789012:execution:${JourneyStateMachine.Name}:*"
# (action, resource) pairs: only the journey state machine, each function only the calls its code makes
STATES_ALLOWED: dict[str, set[tuple[str, str]]] = {
    "JourneyRouterFunction": {
        ("states:StartExecution", "Ref:JourneyStateMachine"),
        ("states:StopExecution", _EXECUTIONS),
    },
    # an event a journey waits for hands the parked execution its task token back
    "CaptureEventsFunction": {("states:SendTaskSuccess", "Ref:JourneyStateMachine")},
}


def states_grants(template: dict, function: str) -> set[tuple[str, str]]:
    grants = set()
    for statement in _statements(template, function):
        for action in _as_list(statement["Action"]):
            if action == "*" or action.lower().startswith("states:"):
                assert "*" not in action and "?" not in action, f"{function}: wildcard action {action}"
                for resource in _as_list(statement["Resource"]):
                    is_ref = isinstance(resource, dict) and "Ref" in resource
                    grants.add((action, "Ref:" + resource["Ref"] if is_ref else _resolve(resource)))
    return grants


@pytest.mark.parametrize("function", sorted(DYNAMODB_ALLOWED))
def test_each_function_has_only_its_allowed_step_functions_grants(template, function):
    # When the function's Step Functions actions and their resources are read
    grants = states_grants(template, function)

    # Then they are exactly its allow-list (none for a function not listed)
    assert grants == STATES_ALLOWED.get(function, set()), function


def test_the_step_functions_check_refuses_a_wider_resource(template):
    # Given the events function granted SendTaskSuccess on every state machine
    widened = copy.deepcopy(template)
    statements = widened["Resources"]["CaptureEventsFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append({"Effect": "Allow", "Action": "states:SendTaskSuccess", "Resource": "*"})
    # Then the check sees the extra grant
    assert ("states:SendTaskSuccess", "*") in states_grants(widened, "CaptureEventsFunction")
    with pytest.raises(AssertionError):
        test_each_function_has_only_its_allowed_step_functions_grants(widened, "CaptureEventsFunction")


# ------------------------------------------------------------------------------------------------- SSM
_JOURNEYS = "JourneysParameter"  # leadflow.services.journeys: enrol, touch, and resume on an awaited event
_FUNNEL = "FunnelConfigParameter"  # leadflow.funnel_config: UTM rules at capture, settings of the report
# function → the SSM parameters (logical ids) its code reads, each through LEADFLOW_<NAME>_PARAMETER
SSM_ALLOWED: dict[str, set[str]] = {
    # capture: the form registry / provider configuration, the scoring model, the funnel's UTM rules
    "CaptureFormFunction": {"FormsRegistryParameter", "ScoringModelParameter", _FUNNEL},
    "CaptureWebhookFunction": {"FormsRegistryParameter", "WebhooksConfigParameter", "ScoringModelParameter", _FUNNEL},
    "FetchLeadsFunction": {"ScoringModelParameter", _FUNNEL},
    "FunnelReportFunction": {_FUNNEL},  # currency, customer value, reference bands, targets
    "CaptureEventsFunction": {"ScoringModelParameter", _JOURNEYS},
    "RunJourneyFunction": {_JOURNEYS},
    "JourneyRouterFunction": {_JOURNEYS},
    "CrmPushRouterFunction": {"ConversionsConfigParameter"},  # which stage changes are conversions
    "RouteLeadsFunction": {"RoutingRulesParameter"},
    "RoutingSlaFunction": {"RoutingRulesParameter"},
    # CRM feedback in: its configuration, and the journeys' names a reason's next action may start
    "CrmFeedbackFunction": {"CrmFeedbackParameter", _JOURNEYS},
    "CrmFeedbackRetryFunction": {"CrmFeedbackParameter", _JOURNEYS},
    **{f"{p}ConversionFunction": {"ConversionsConfigParameter"} for p in ("GoogleAds", "Meta", "Baidu", "Tencent")},
}
SSM_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter"


def ssm_grants(template: dict, function: str) -> set[str]:
    """The SSM parameters (logical ids) a function may read; any other SSM grant fails here."""
    parameters = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::SSM::Parameter"}
    granted = set()
    for statement in _statements(template, function):
        for action in _as_list(statement["Action"]):
            if action == "*" or action.lower().startswith("ssm:"):
                assert action == "ssm:GetParameter", f"{function}: {action} (only ssm:GetParameter is needed)"
                for resource in _as_list(statement["Resource"]):
                    arn = _resolve(resource)
                    match = re.fullmatch(re.escape(SSM_ARN) + r"(/?)\$\{(\w+)\}", arn)
                    assert match and match.group(2) in parameters, f"{function}: {arn} is not one parameter"
                    named = (parameters[match.group(2)]["Properties"].get("Name") or "").startswith("/")
                    assert match.group(1) == ("" if named else "/"), f"{function}: {arn} is not the parameter's ARN"
                    granted.add(match.group(2))
    return granted


def _environment(template: dict, function: str) -> dict:
    own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return {**shared, **own}


@pytest.mark.parametrize("function", sorted(DYNAMODB_ALLOWED))
def test_each_function_reads_exactly_the_configuration_parameters_its_code_loads(template, function):
    # When the function's SSM grants are read
    granted = ssm_grants(template, function)

    # Then they are exactly its allow-list, each at the parameter's real ARN
    assert granted == SSM_ALLOWED.get(function, set()), function
    # and its environment names each of them (LEADFLOW_<NAME>_PARAMETER), so its loader reads that parameter
    named = {v["Ref"] for k, v in _environment(template, function).items() if k.endswith("_PARAMETER")}
    assert granted <= named, function


@pytest.mark.parametrize(
    "parameter, variable, reader",
    [
        ("ScoringModelParameter", "LEADFLOW_SCORING_PARAMETER", "CaptureFormFunction"),
        (_JOURNEYS, "LEADFLOW_JOURNEYS_PARAMETER", "JourneyRouterFunction"),
        ("RoutingRulesParameter", "LEADFLOW_ROUTING_PARAMETER", "RouteLeadsFunction"),
        ("ConversionsConfigParameter", "LEADFLOW_CONVERSIONS_PARAMETER", "CrmPushRouterFunction"),
        ("CrmFeedbackParameter", "LEADFLOW_CRM_FEEDBACK_PARAMETER", "CrmFeedbackFunction"),
        (_FUNNEL, "LEADFLOW_FUNNEL_PARAMETER", "FunnelReportFunction"),
    ],
)
def test_each_yaml_configuration_parameter_is_written_with_the_placeholder(template, parameter, variable, reader):
    # Given the stack as `sam deploy` creates it with no parameter overrides
    value = template["Resources"][parameter]["Properties"]["Value"]
    default = template["Parameters"][value["Ref"]]["Default"] if isinstance(value, dict) else value
    # Then the SSM parameter holds the placeholder (the packaged default runs: no manual step after the deploy)
    # and the loader (config_text) is told its name by the variable it reads
    assert default == "default"
    assert _environment(template, reader)[variable] == {"Ref": parameter}


def test_the_ssm_check_refuses_a_grant_without_the_separator_or_on_every_parameter(template):
    for resource in (
        {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${RoutingRulesParameter}"},
        {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/*"},
    ):
        # Given the routing function's grant rewritten to a wrong or wider resource
        widened = copy.deepcopy(template)
        statements = widened["Resources"]["RouteLeadsFunction"]["Properties"]["Policies"][0]["Statement"]
        for statement in statements:
            if statement["Action"] == "ssm:GetParameter":
                statement["Resource"] = resource
        # Then the check refuses it
        with pytest.raises(AssertionError, match="RouteLeadsFunction"):
            ssm_grants(widened, "RouteLeadsFunction")


# ---------------------------------------------------------------------------------------------- routes
def test_every_route_outside_the_public_list_requires_iam(template):
    # When the template's routes are read / Then none outside the declared public list is open
    assert unprotected_routes(template) == []
    # And the public list names only routes that exist (a removed route is removed from it too)
    routes = {(method, path) for method, path, *_ in http_routes(template)}
    assert routes >= PUBLIC_ROUTES


def test_a_route_added_without_iam_is_reported(template):
    # Given a new operator route added without Auth
    widened = copy.deepcopy(template)
    events = widened["Resources"]["LeadsApiFunction"]["Properties"]["Events"]
    events["ExportLeads"] = {
        "Type": "HttpApi",
        "Properties": {"ApiId": {"Ref": "HttpApi"}, "Method": "GET", "Path": "/v1/leads/export"},
    }
    # and one on SAM's implicit API
    events["Implicit"] = {"Type": "HttpApi", "Properties": {"Method": "GET", "Path": "/v1/leads/implicit"}}

    # When checked / Then both are reported
    found = unprotected_routes(widened)
    assert ("GET", "/v1/leads/export", "LeadsApiFunction") in found
    assert ("(implicit API)", "Implicit", "LeadsApiFunction") in found
