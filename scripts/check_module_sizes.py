"""List modules over the size limits of STYLE.md (review at 500 lines, split above 800)."""

from __future__ import annotations

import sys
from pathlib import Path

REVIEW, LIMIT = 500, 800


def main() -> int:
    root = Path(__file__).resolve().parents[1] / "src"
    failed = False
    for path in sorted(root.rglob("*.py")):
        lines = sum(1 for _ in path.open(encoding="utf-8"))
        if lines > LIMIT:
            print(f"{path.relative_to(root)}: {lines} lines (limit {LIMIT})")
            failed = True
        elif lines > REVIEW:
            print(f"{path.relative_to(root)}: {lines} lines (review above {REVIEW})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
