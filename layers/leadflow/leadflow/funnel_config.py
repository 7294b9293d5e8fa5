"""Load the funnel configuration (UTM rules, currency, customer value, reference bands, quarterly targets).

Read through `yaml_config.config_text` ("funnel"): `LEADFLOW_FUNNEL_CONFIG_FILE`, else on AWS the SSM parameter
named by `LEADFLOW_FUNNEL_PARAMETER` (Powertools, max age five minutes; the stack's placeholder `default` means
no override), else the shipped `infra/funnel/default.yaml` (packaged in the layer as
`leadflow/defaults/funnel/default.yaml`). Errors name file, line and field like the scoring model's:
`infra/funnel/default.yaml:14: utm_rules[0].set.utm_source: '' should be non-empty`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from leadflow.domain.funnel import FunnelSettings
from leadflow.errors import FunnelConfigInvalid, UpstreamUnavailable
from leadflow.yaml_config import config_text, default_file, parse, read, render, schema_problems

SCHEMA = "funnel.v1.json"
DEFAULT_FILE = default_file("funnel")  # the layer's packaged copy, or infra/funnel/default.yaml
DEFAULT_BANDS = {"lead_to_mql": (0.30, 0.40), "mql_to_sql": (0.50, 0.70), "sql_to_customer": (0.03, 0.10)}


@dataclass(frozen=True)
class FunnelConfig:
    settings: FunnelSettings
    utm_rules: tuple[dict, ...]


def load_funnel_config(text: str, source: str = "<funnel>") -> FunnelConfig:
    """The configuration of YAML `text`, or FunnelConfigInvalid listing every problem by line."""
    return _load(text, source)


def load_funnel_config_file(path: str | Path) -> FunnelConfig:
    path = Path(path)
    return load_funnel_config(read(path, str(path), FunnelConfigInvalid), str(path))


def current_config() -> FunnelConfig:
    """The configuration in force: the file, else the SSM parameter (unless it holds the placeholder), else the
    shipped default. UpstreamUnavailable when the parameter cannot be read."""
    unavailable = "The funnel configuration could not be read"
    text, source = config_text("funnel", FunnelConfigInvalid, unavailable, "LEADFLOW_FUNNEL_CONFIG_FILE")
    return load_funnel_config(text, source)


def utm_rules() -> list[dict]:
    """The UTM rules capture applies; none (the touch as captured) when the configuration cannot be read."""
    try:
        return list(current_config().utm_rules)
    except (FunnelConfigInvalid, UpstreamUnavailable):
        from leadflow.observability import logger

        logger.exception("funnel configuration unusable: touches are captured without UTM rules")
        return []


@lru_cache(maxsize=8)
def _load(text: str, source: str) -> FunnelConfig:
    from leadflow.schemas import conforms, validator

    node, document = parse(text, source, FunnelConfigInvalid, "the configuration is empty")
    problems: list[tuple[tuple, str]] = []
    if not isinstance(document, dict) or conforms(SCHEMA, document) is not True:
        for error in validator(SCHEMA).iter_errors(document):
            problems.extend(schema_problems(error))
    if not problems:
        currency = document.get("currency", "USD")
        for name in ("targets",):
            for quarter, stages in (document.get(name) or {}).items():
                if stages.get("lead") == 0 and any(stages.get(s) for s in ("mql", "sql", "customer")):
                    problems.append(((name, quarter, "lead"), "a quarter with later-stage targets needs a lead target"))
        bands = {k: tuple(v) for k, v in (document.get("reference_bands") or DEFAULT_BANDS).items()}
        for name, (low, high) in bands.items():
            if low > high:
                problems.append((("reference_bands", name), f"the band's low end {low} is above its high end {high}"))
        ids = [rule["id"] for rule in document.get("utm_rules") or []]
        for i, rule_id in enumerate(ids):
            if rule_id in ids[:i]:
                problems.append((("utm_rules", i, "id"), f"duplicate rule id {rule_id!r}"))
        if not problems:
            settings = FunnelSettings(
                currency=currency,
                exchange_rates=dict(document.get("exchange_rates") or {}),
                customer_value=document.get("customer_value"),
                reference_bands=bands,
                targets={q: dict(t) for q, t in (document.get("targets") or {}).items()},
            )
            return FunnelConfig(settings, tuple(document.get("utm_rules") or ()))
    raise FunnelConfigInvalid(source, render(problems, node, source))
