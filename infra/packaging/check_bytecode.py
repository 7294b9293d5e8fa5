"""Fail when a built module would be compiled again on every Lambda cold start.

`make build` compiles `.aws-sam/build` with `compileall --invalidation-mode unchecked-hash`; this check then
requires, for every `.py` under the given folders, a `__pycache__/<name>.<tag>.pyc` that:
- exists, for the runtime's exact Python minor version (the tag, e.g. cpython-312: another minor version's
  magic number is ignored by the interpreter);
- is hash-based (a timestamp .pyc is trusted only while the .py keeps the mtime it was compiled against, which
  a zip does not keep reliably);
- was compiled from this very source (the hash in its header is the hash of the .py).

Run it with the runtime's Python (its magic number and cache tag are the reference):
    python3.12 infra/packaging/check_bytecode.py --python-tag cpython-312 .aws-sam/build
Exit status 0 when every module has its bytecode, 1 otherwise (the first offenders are listed).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import Counter
from pathlib import Path

_FLAG_HASH_BASED = 0b01
_SHOWN = 20


def problem(source: Path) -> str | None:
    """Why `source` has no usable bytecode for this interpreter, or None when it has."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    try:
        header = cached.read_bytes()[:16]
    except FileNotFoundError:
        return "no .pyc"
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return "a .pyc of another Python version"
    if not int.from_bytes(header[4:8], "little") & _FLAG_HASH_BASED:
        return "a timestamp-based .pyc (not hash-based)"
    if header[8:16] != importlib.util.source_hash(source.read_bytes()):
        return "a stale .pyc (compiled from another source)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-tag", required=True, help="the runtime's cache tag, e.g. cpython-312")
    parser.add_argument("roots", nargs="+", type=Path, help="folders to check, e.g. .aws-sam/build")
    args = parser.parse_args(argv)

    if sys.implementation.cache_tag != args.python_tag:
        print(
            f"check_bytecode: run me with the runtime's Python ({args.python_tag}), not {sys.implementation.cache_tag}",
            file=sys.stderr,
        )
        return 2

    modules, missing = Counter(), []
    for root in args.roots:
        if not root.is_dir():
            print(f"check_bytecode: {root} is not a folder (run `make build` first)", file=sys.stderr)
            return 2
        for source in sorted(root.rglob("*.py")):
            top = source.relative_to(root).parts[0]
            modules[top] += 1
            reason = problem(source)
            if reason:
                missing.append((source, reason))

    total = sum(modules.values())
    if not total:
        print("check_bytecode: FAILED: no module found (is this a build folder?)")
        return 1
    if missing:
        print(f"check_bytecode: FAILED: {len(missing)} of {total} modules have no usable {args.python_tag} bytecode")
        for source, reason in missing[:_SHOWN]:
            print(f"  {source}: {reason}")
        if len(missing) > _SHOWN:
            print(f"  … and {len(missing) - _SHOWN} more")
        return 1
    where = ", ".join(f"{top} {count}" for top, count in sorted(modules.items()))
    print(f"check_bytecode: ok: {total} modules have hash-based {args.python_tag} bytecode ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
