"""Normalisation of submitted values: email, E.164 phone, names, company size, country, consent.

Rules (documented in the README): emails are trimmed and lower-cased but otherwise kept as typed (no
provider-specific rewriting such as removing Gmail dots); phones become E.164 using the lead's country,
else the configured default region; countries become ISO 3166-1 alpha-2 codes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

from leadflow.errors import FieldError

# Pragmatic address check: one @, a dot-separated domain with a TLD, no spaces. Deliverability is not
# knowable at capture time; this only catches what is certainly not an address.
_EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\]\\]{1,64}@(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_SPACES = re.compile(r"\s+")
_TRUE = {"true", "on", "yes", "y", "1", "checked", "agree", "agreed", "opt-in", "optin"}
_FALSE = {"false", "off", "no", "n", "0", "", "unchecked", "opt-out", "optout"}

COMPANY_SIZE_BANDS = (
    (1, 10, "1-10"),
    (11, 50, "11-50"),
    (51, 200, "51-200"),
    (201, 500, "201-500"),
    (501, 1000, "501-1000"),
    (1001, 5000, "1001-5000"),
    (5001, 10000, "5001-10000"),
    (10001, None, "10001+"),
)


def clean_text(value: Any, limit: int = 256) -> str | None:
    """Trim, collapse inner whitespace, drop control characters; None for empty."""
    if value is None:
        return None
    text = str(value)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    text = _SPACES.sub(" ", text).strip()
    return text[:limit] if text else None


def normalise_email(value: Any) -> tuple[str | None, FieldError | None]:
    raw = clean_text(value, limit=320)
    if raw is None:
        return None, None
    email = raw.lower()
    if email.startswith("mailto:"):
        email = email[len("mailto:") :]
    if not _EMAIL_RE.match(email):
        return None, FieldError("email", "is not a valid email address")
    return email, None


def normalise_phone(value: Any, region: str) -> tuple[str | None, FieldError | None]:
    raw = clean_text(value, limit=64)
    if raw is None:
        return None, None
    import phonenumbers  # lazy: ~80 ms of import only paid when a phone arrives

    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None, FieldError("phone", f"is not a phone number (default region {region})")
    if not phonenumbers.is_valid_number(number):
        return None, FieldError("phone", f"is not a valid phone number (default region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def normalise_name(value: Any) -> str | None:
    return clean_text(value, limit=128)


def split_full_name(full_name: str | None) -> tuple[str | None, str | None]:
    name = normalise_name(full_name)
    if not name:
        return None, None
    first, _, last = name.partition(" ")
    return first, (last or None)


def normalise_company_size(value: Any) -> str | None:
    """'11-50', '11 to 50', '50 employees', '1,000+', '5000' → the band ('11-50', '1001-5000', ...)."""
    text = clean_text(value, limit=64)
    if text is None:
        return None
    numbers = [int(n.replace(",", "").replace(".", "")) for n in re.findall(r"\d[\d,.]*", text)]
    if not numbers:
        return text  # unknown wording is kept as typed rather than lost
    # For a range the upper bound decides the band ('11-50' → 11-50, '40-60' → 51-200); for '1000+' the lower.
    size = numbers[-1] if len(numbers) > 1 else numbers[0]
    if text.rstrip().endswith("+") and len(numbers) == 1:
        size = numbers[0] + 1 if any(numbers[0] == hi for _, hi, _ in COMPANY_SIZE_BANDS) else numbers[0]
    for low, high, band in COMPANY_SIZE_BANDS:
        if size >= low and (high is None or size <= high):
            return band
    return COMPANY_SIZE_BANDS[0][2]


_COUNTRY_ALIASES = {
    "us": "US",
    "usa": "US",
    "u.s.a.": "US",
    "u.s.": "US",
    "america": "US",
    "united states of america": "US",
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "uae": "AE",
    "south korea": "KR",
    "korea": "KR",
    "russia": "RU",
    "mainland china": "CN",
    "prc": "CN",
    "deutschland": "DE",
    "the netherlands": "NL",
    "holland": "NL",
}


COUNTRY_NAMES_FILE = Path(__file__).with_name("country_names.json")


def _locale_data() -> dict[str, dict[str, str]]:
    """phonenumbers' country names per language (`phonenumbers.geodata.locale.LOCALE_DATA`), read alone.

    `import phonenumbers.geodata.locale` first runs the `phonenumbers.geodata` package, which loads the
    whole geocoding table (~19 MB of Python, 1.5-2.5 s, for place names of number prefixes that LeadFlow
    never asks for). The locale module itself needs none of it (only `phonenumbers.util`), so it is loaded
    from its file under its own name; tests/unit/test_normalise.py checks it is the same table.
    """
    import importlib.util
    import sys

    import phonenumbers

    name = "phonenumbers.geodata.locale"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            name, Path(phonenumbers.__file__).parent / "geodata" / "locale.py"
        )
        if spec is None or spec.loader is None:  # pragma: no cover - a phonenumbers without the file
            from phonenumbers.geodata.locale import LOCALE_DATA

            return LOCALE_DATA
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.LOCALE_DATA


def build_country_names() -> dict[str, str]:
    """Country name (in every language phonenumbers ships) → ISO alpha-2, from phonenumbers' own tables.

    What `country_names.json` holds: reading that file costs ~5 ms on a cold start, building this ~150 ms.
    After upgrading phonenumbers, regenerate it with `python -m leadflow.domain.normalise` (a test fails
    until the file matches).
    """
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    regions = {r for codes in COUNTRY_CODE_TO_REGION_CODE.values() for r in codes if r != "001"}
    names: dict[str, str] = {}
    for region, by_language in _locale_data().items():
        if region not in regions:
            continue
        for name in by_language.values():
            names.setdefault(name.casefold(), region)
    return names


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country name (in every language phonenumbers ships) → ISO alpha-2, plus common aliases."""
    names: dict[str, str] = json.loads(COUNTRY_NAMES_FILE.read_text(encoding="utf-8"))
    names.update({alias: code for alias, code in _COUNTRY_ALIASES.items()})
    return names


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return frozenset(r for codes in COUNTRY_CODE_TO_REGION_CODE.values() for r in codes if r != "001")


def normalise_country(value: Any) -> str | None:
    """'us', 'United States', 'Deutschland', '中国' → 'US', 'US', 'DE', 'CN'; unknown text kept as typed."""
    text = clean_text(value, limit=64)
    if text is None:
        return None
    if len(text) == 2 and text.upper() in _country_codes():
        return text.upper()
    names = _country_names()
    folded = text.casefold()
    return names.get(folded) or names.get(folded.replace(".", "")) or names.get(folded.strip(".")) or text


def parse_consent(value: Any) -> bool | None:
    """Checkbox and API spellings of yes/no; None when the value says nothing."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


if __name__ == "__main__":  # regenerate country_names.json from the installed phonenumbers
    COUNTRY_NAMES_FILE.write_text(
        json.dumps(build_country_names(), ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n",
        encoding="utf-8",
    )
