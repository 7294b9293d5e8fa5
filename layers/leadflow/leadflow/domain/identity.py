"""Identity keys and how a submission is matched to an existing lead.

Keys, strongest first: the provider's lead id, the normalised email, the E.164 phone. A submission
belongs to the lead that owns its strongest matching key. Keys owned by a *different* lead are a
conflict: recorded, never merged (two known identities are never joined automatically).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def email_key(email: str) -> str:
    return f"EMAIL#{email}"


def phone_key(phone: str) -> str:
    return f"PHONE#{phone}"


def external_key(provider: str, external_id: str) -> str:
    return f"EXT#{provider}#{external_id}"


def key_kind(key: str) -> str:
    """'EMAIL#a@b.c' → 'email' (safe to show: carries no PII)."""
    return key.split("#", 1)[0].lower().replace("ext", "external_id")


def identity_keys(email: str | None, phone: str | None, external_ids: list[tuple[str, str]]) -> list[str]:
    keys = [external_key(p, i) for p, i in external_ids]
    if email:
        keys.append(email_key(email))
    if phone:
        keys.append(phone_key(phone))
    return list(dict.fromkeys(keys))


@dataclass(frozen=True)
class Resolution:
    lead_id: str | None  # the existing lead the submission belongs to; None: create a new lead
    claim: list[str] = field(default_factory=list)  # unowned keys that become the lead's
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (key, other lead id)


def resolve(keys: list[str], owners: dict[str, str]) -> Resolution:
    """Decide where a submission goes, given which lead owns each of its keys (in precedence order)."""
    owned = [(key, owners[key]) for key in keys if key in owners]
    claim = [key for key in keys if key not in owners]
    if not owned:
        return Resolution(None, claim, [])
    primary = owned[0][1]
    conflicts = [(key, lead_id) for key, lead_id in owned if lead_id != primary]
    return Resolution(primary, claim, conflicts)
