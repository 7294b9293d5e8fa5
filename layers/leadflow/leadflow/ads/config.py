"""Conversions configuration: per ad platform, whether it is on, its window, batch size, attempts and, per
lifecycle stage, what to report (Google conversion action, Meta event name, Baidu newType, Tencent action type).

YAML validated against schemas/conversions.v1.json; problems are reported as `file:line: field: message`
(leadflow.yaml_config), so a bad configuration fails loudly at load. Where it comes from
(`yaml_config.config_text`, "conversions"), first found: `LEADFLOW_CONVERSIONS_FILE` (a path; `leadflow up`
names infra/local/conversions.yaml), the SSM parameter named by `LEADFLOW_CONVERSIONS_PARAMETER` (on AWS,
read through Powertools with a 5-minute max age, so an edit is picked up without a deploy; the stack's
placeholder `default` means no override), else the shipped infra/conversions/default.yaml (every platform
disabled), packaged in the layer as `leadflow/defaults/conversions/default.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from leadflow.ads import PLATFORMS
from leadflow.errors import ConfigProblems
from leadflow.yaml_config import config_text, default_file, parse, read, render, schema_problems

SCHEMA = "conversions.v1.json"
DEFAULT_FILE = default_file("conversions")  # the layer's packaged copy, or infra/conversions/default.yaml
DEFAULTS: dict[str, dict[str, Any]] = {
    "google-ads": {"window_days": 90, "batch_size": 200, "max_attempts": 8, "api_version": "v22"},
    "meta": {"window_days": 7, "batch_size": 100, "max_attempts": 8, "api_version": "v21.0"},
    "baidu": {"window_days": 30, "batch_size": 99, "max_attempts": 8},
    "tencent": {"window_days": 30, "batch_size": 50, "max_attempts": 8, "api_version": "v1.1"},
}


class ConversionConfigInvalid(ConfigProblems):
    """The conversions configuration refused at load: 'file:line: field.path: message' lines."""

    what = "conversions configuration"


@dataclass(frozen=True)
class PlatformConfig:
    name: str
    enabled: bool
    window_days: int
    batch_size: int
    max_attempts: int
    stages: dict[str, dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversionConfig:
    platforms: dict[str, PlatformConfig]

    def active(self) -> list[PlatformConfig]:
        return [p for p in self.platforms.values() if p.enabled and p.stages]


def load_conversions(text: str, source: str = "<conversions>") -> ConversionConfig:
    return _load(text, source)


def load_conversions_file(path: str | Path) -> ConversionConfig:
    path = Path(path)
    return load_conversions(read(path, str(path), ConversionConfigInvalid), str(path))


def conversion_config() -> ConversionConfig:
    """The configuration in force (see the module docstring); compiled once per text. UpstreamUnavailable when
    the SSM parameter cannot be read (the message is retried); ConversionConfigInvalid when it is not valid."""
    unavailable = "The conversions configuration could not be read"
    return load_conversions(*config_text("conversions", ConversionConfigInvalid, unavailable))


@lru_cache(maxsize=8)
def _load(text: str, source: str) -> ConversionConfig:
    from leadflow.schemas import conforms, validator

    node, document = parse(text, source, ConversionConfigInvalid, "the configuration is empty")
    problems: list[tuple[tuple, str]] = []
    if conforms(SCHEMA, document) is not True:  # the stdlib fast path; jsonschema decides and explains the rest
        for error in validator(SCHEMA).iter_errors(document):
            problems.extend(schema_problems(error))
    if problems:
        raise ConversionConfigInvalid(source, render(problems, node, source))
    platforms = {}
    for name in PLATFORMS:
        raw = {**DEFAULTS[name], **((document.get("platforms") or {}).get(name) or {})}
        known = ("enabled", "window_days", "batch_size", "max_attempts", "stages")
        platforms[name] = PlatformConfig(
            name=name,
            enabled=bool(raw.get("enabled", False)),
            window_days=int(raw["window_days"]),
            batch_size=int(raw["batch_size"]),
            max_attempts=int(raw["max_attempts"]),
            stages={stage: dict(spec) for stage, spec in (raw.get("stages") or {}).items()},
            options={k: v for k, v in raw.items() if k not in known},
        )
    return ConversionConfig(platforms)


def stage_value(lead: dict, spec: dict) -> float | None:
    """The value of a conversion: the lead's `value_field` (a dotted path) when it holds a number, else `value`."""
    path = spec.get("value_field")
    if path:
        value: Any = lead
        for part in str(path).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            pass
    return float(spec["value"]) if spec.get("value") is not None else None
