"""Where a browser goes when it follows a `Location`, and whether a form's registry lets it go there.

A redirect target is judged as a browser parses it (the WHATWG URL Standard, url.spec.whatwg.org), not as
`urllib.parse` does: `https://evil.example\\@www.example.com/` is `www.example.com` to urlsplit but
`evil.example` to a browser, because `\\` ends the authority of an http(s) URL. Only the parts that decide
the destination are parsed here, and wherever the standard and a simple rule could disagree the URL is
refused rather than guessed:

- leading/trailing C0 controls and spaces are stripped and tab/CR/LF removed anywhere (as browsers do);
  any other control character refuses the URL;
- the scheme (case-insensitive) must be `http` or `https` followed by at least two `/` or `\\` (further
  ones are skipped, as browsers do); relative and protocol-relative URLs (`//evil`), `javascript:`,
  `data:` and every other scheme are refused;
- the authority ends at the first `/`, `\\`, `?` or `#`; any `@` in it (userinfo) refuses the URL;
- the host is percent-decoded, then mapped with UTS #46 (non-transitional, as browsers do; the `idna`
  package, since Python's built-in codec is IDNA 2003 and maps `ß` to `ss` where browsers do not) and
  lower-cased; a host that does not map, or maps to anything but letters, digits, `-`, `_` and dots, is
  refused; a host ending in a number is an IPv4 address (`0x7f.1` is 127.0.0.1) and `[...]` an IPv6 one;
- a port must be ASCII digits up to 65535; the scheme's default port counts as none.

The URL that goes into `Location` is re-serialised from the parsed parts (host as checked, path, query and
fragment percent-encoded where needed), so the browser receives exactly what was checked.

Registry entries (`redirect_hosts`): `[http://]host[:port|:*]` where host is a domain (`www.example.com`),
a `*.` wildcard (`*.example.com`: any subdomain, not the apex), an IPv4 address or a bracketed IPv6
address (bare `::1` is accepted too). Without `http://` only https is allowed; with it, http and https.
Without a port only the scheme's default port is allowed; `:8443` allows that port too, `:*` any port.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):", re.ASCII)
_LABEL = re.compile(r"[a-z0-9_-]{1,63}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,5}", re.ASCII)
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}", re.ASCII)
_IPV4_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
_IPV4_HEX = re.compile(r"0[xX][0-9A-Fa-f]*", re.ASCII)
_IPV4_OCTAL = re.compile(r"0[0-7]+", re.ASCII)
# Kept as written in path, query and fragment; everything else (space, quotes, <>, `, non-ASCII) is %-encoded.
_SAFE = "!#$%&'()*+,-./:;=?@[]^_{|}~"


@dataclass(frozen=True)
class Target:
    """A redirect URL as a browser resolves it."""

    scheme: str  # "http" or "https"
    host: str  # lower-case ASCII without a trailing dot; IPv6 in brackets
    port: int | None  # None: the scheme's default port
    rest: str  # path (starting with "/"), query and fragment, percent-encoded

    @property
    def url(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.host}{port}{self.rest}"


def parse(url: str) -> Target | None:
    """The destination of `url` as a browser would follow it, or None when it is not an absolute http(s)
    URL this module can read with certainty."""
    if not isinstance(url, str):
        return None
    text = url.strip("".join(chr(c) for c in range(0x21)))
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    if len(text) > 4096 or any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return None
    scheme_match = _SCHEME.match(text)
    if scheme_match is None:
        return None  # relative, protocol-relative (//evil) or not a URL
    scheme = scheme_match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        return None  # javascript:, data:, ftp:, ...
    rest = text[scheme_match.end() :]
    slashes = len(rest) - len(rest.lstrip("/\\"))
    if slashes < 2:
        # `https:evil` and `https:/evil` resolve against the page's own URL in some browsers and to the host
        # `evil` in others: never guess.
        return None
    rest = rest[slashes:]
    end = next((i for i, ch in enumerate(rest) if ch in "/\\?#"), len(rest))
    authority, rest = rest[:end], rest[end:]
    if "@" in authority:
        return None  # userinfo: `https://www.example.com@evil/` goes to evil
    host_text, port_text = _split_port(authority)
    if host_text is None:
        return None
    port = _port(port_text, scheme)
    host = _host(host_text)
    if host is None or port == -1:
        return None
    return Target(scheme, host, port, _path_query_fragment(rest))


def _split_port(authority: str) -> tuple[str | None, str]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            return None, ""
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            return None, ""
        return host, after[1:]
    host, _, port = authority.partition(":")
    return host, port


def _port(text: str, scheme: str) -> int | None:
    """None for the default port (or none given), -1 when the port is not valid."""
    if text == "":
        return None
    if not _DIGITS.fullmatch(text.lstrip("0") or "0"):
        return -1
    value = int(text)
    if value > 65535:
        return -1
    return None if value == DEFAULT_PORTS[scheme] else value


def _host(text: str) -> str | None:
    if not text:
        return None
    if text.startswith("["):
        inner = text[1:-1]
        if not _IPV6.fullmatch(inner):
            return None  # zone ids (%eth0) and anything else ipaddress would tolerate
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            return None
    try:
        domain = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if domain.isascii():
        ascii_host = domain.lower()
    else:
        ascii_host = _to_ascii(domain)
        if ascii_host is None:
            return None
    labels = ascii_host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot: the same host
    if _ends_in_number(labels[-1]):
        return _ipv4(labels)
    if not all(_LABEL.fullmatch(label) for label in labels) or len(ascii_host) > 253:
        return None
    return ".".join(labels)


def _to_ascii(domain: str) -> str | None:
    """UTS #46 ToASCII, non-transitional (as browsers), or None when the domain does not map."""
    import idna  # only for non-ASCII hosts

    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _ends_in_number(label: str) -> bool:
    return bool(_IPV4_DECIMAL.fullmatch(label) or _IPV4_HEX.fullmatch(label))


def _ipv4_number(part: str) -> int | None:
    if _IPV4_HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8) if _IPV4_OCTAL.fullmatch(part) else None  # "08" is no number to a browser
    if _IPV4_DECIMAL.fullmatch(part):
        return int(part)
    return None


def _ipv4(labels: list[str]) -> str | None:
    """The WHATWG IPv4 parser: 1 to 4 parts, each decimal, 0x-hex or 0-octal; the last fills the rest."""
    if not 1 <= len(labels) <= 4:
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for index, n in enumerate(values[:-1]):
        address += n * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(address))


def _path_query_fragment(rest: str) -> str:
    fragment_at = rest.find("#")
    before, fragment = (rest, "") if fragment_at < 0 else (rest[:fragment_at], rest[fragment_at:])
    query_at = before.find("?")
    path, query = (before, "") if query_at < 0 else (before[:query_at], before[query_at:])
    path = path.replace("\\", "/")  # http(s) paths: a backslash is a slash
    if not path.startswith("/"):
        path = "/" + path
    return "".join(quote(part, safe=_SAFE) for part in (path, query, fragment))


# -------------------------------------------------------------------------------------- registry rules
@dataclass(frozen=True)
class HostRule:
    """One `redirect_hosts` entry."""

    host: str  # as Target.host; for a wildcard, the parent domain
    wildcard: bool = False
    port: int | str | None = None  # None: default port only; "*": any port
    http: bool = False  # http allowed as well as https

    def allows(self, target: Target) -> bool:
        if target.scheme == "http" and not self.http:
            return False
        if target.port is not None and self.port != "*" and self.port != target.port:
            return False
        if self.wildcard:
            return target.host.endswith("." + self.host)
        return target.host == self.host


_RULE = re.compile(
    r"(?:(?P<scheme>https?)://)?(?P<host>\*\.[^:/\[\]]+|[^:/\[\]]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\*|[0-9]{1,5}))?",
    re.ASCII,
)


def host_rule(entry: str) -> HostRule | None:
    """The rule an entry states, or None when it is not a valid entry (a form registry error)."""
    if not isinstance(entry, str):
        return None
    text = entry.strip()
    if text.count(":") >= 2 and "[" not in text and "//" not in text:
        text = f"[{text}]"  # a bare IPv6 address (`::1`)
    match = _RULE.fullmatch(text)
    if match is None:
        return None
    raw_host, wildcard = match.group("host"), False
    if raw_host.startswith("*."):
        raw_host, wildcard = raw_host[2:], True
    host = _host(raw_host)
    port_text = match.group("port")
    port: int | str | None = "*" if port_text == "*" else None
    if port_text and port_text != "*":
        port = int(port_text)
        if not 0 < port <= 65535:
            return None
    if host is None or (wildcard and (host.startswith("[") or _ends_in_number(host.rsplit(".", 1)[-1]))):
        return None
    return HostRule(host=host, wildcard=wildcard, port=port, http=match.group("scheme") == "http")


def allowed_target(url: str, entries: tuple[str, ...] | list[str]) -> str | None:
    """The URL to send in `Location` when `url` goes to a host the entries allow, else None."""
    target = parse(url)
    if target is None:
        return None
    rules = [rule for rule in (host_rule(entry) for entry in entries) if rule is not None]
    return target.url if any(rule.allows(target) for rule in rules) else None
