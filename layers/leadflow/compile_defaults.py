"""Build step (layers/leadflow/Makefile, layer-code): write the JSON twin of every packaged default.

    python compile_defaults.py <layer>/leadflow/defaults

Each `<name>/default.yaml` is read the way the loaders read it (leadflow.yaml_config.parse: duplicate keys and
broken YAML refused) and written next to it as `<name>/default.json`, which `yaml_config.default_file` prefers:
a function's first request then reads its configuration with `json` instead of importing PyYAML. A default
holding a value JSON has no type for (a YAML date, say) keeps only its YAML, and the build says so.
Not part of the layer: only the `leadflow` package is copied into it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def compile_defaults(defaults: Path) -> list[str]:
    """Write default.json beside each default.yaml below `defaults`; the names whose YAML is kept alone."""
    from leadflow.yaml_config import parse

    def invalid(source: str, lines: list[str]) -> Exception:
        return SystemExit("\n".join(lines))

    kept = []
    for source in sorted(defaults.glob("*/default.yaml")):
        _, document = parse(source.read_text(encoding="utf-8"), str(source), invalid, "the configuration is empty")
        try:
            text = json.dumps(document, ensure_ascii=False, indent=1)
        except TypeError:
            kept.append(source.parent.name)
            continue
        if json.loads(text) != document:
            kept.append(source.parent.name)
            continue
        (source.parent / "default.json").write_text(text + "\n", encoding="utf-8")
    return kept


if __name__ == "__main__":
    for name in compile_defaults(Path(sys.argv[1])):
        message = f"compile_defaults: {name}/default.yaml holds a value JSON cannot carry; its YAML is read"
        print(message, file=sys.stderr)
