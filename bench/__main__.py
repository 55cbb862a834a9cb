"""``python -m bench NAME [options]``: each benchmark prints one JSON object as its last line."""

from __future__ import annotations

import importlib
import json
import sys

BENCHES = ("finance", "jira", "planner", "dataverse", "mspdi", "reconcile", "marts", "faults")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"bench.{argv[0]}")
    except ModuleNotFoundError:
        print(f"bench {argv[0]!r} is not built yet", file=sys.stderr)
        return 2
    result = module.main(argv[1:])
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
