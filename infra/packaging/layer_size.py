"""Print the unzipped size of a built layer (what Lambda counts against its 250 MB limit), by top-level package.

Usage: python infra/packaging/layer_size.py .aws-sam/build/LeadflowLayer
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_SHOWN = 8


def unzipped_bytes(root: Path) -> int:
    """Bytes of every file under `root`, as Lambda unzips them."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def by_package(root: Path) -> Counter[str]:
    """Bytes per distribution or top-level module of `<root>/python` (dist-info counted with its package)."""
    sizes: Counter[str] = Counter()
    base = root / "python" if (root / "python").is_dir() else root
    for path in base.rglob("*"):
        if path.is_file():
            top = path.relative_to(base).parts[0]
            name = re.sub(r"-[^-]+\.(dist-info|data)$", "", top).removesuffix(".py").lower().replace("-", "_")
            sizes[name] += path.stat().st_size
    return sizes


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layer", type=Path, help="the built layer folder, e.g. .aws-sam/build/LeadflowLayer")
    args = parser.parse_args(argv)
    if not args.layer.is_dir():
        print(f"layer_size: {args.layer} is not a folder (run `make build` first)", file=sys.stderr)
        return 2
    total = unzipped_bytes(args.layer)
    bytecode = sum(path.stat().st_size for path in args.layer.rglob("*.pyc"))
    largest = ", ".join(f"{name} {_mb(size)}" for name, size in by_package(args.layer).most_common(_SHOWN))
    print(f"layer_size: {args.layer.name} unzipped {_mb(total)} (bytecode {_mb(bytecode)}); largest: {largest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
