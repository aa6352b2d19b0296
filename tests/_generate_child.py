"""Helper for tests/test_pipeline.py: generate a dataset in a separate process (so it can be killed).

Usage: python tests/_generate_child.py SPEC_JSON ROOT [SCHEDULER [WORKERS]]
"""

import json
import sys


def main() -> None:
    from fieldbench.pipeline import DatasetSpec, generate

    spec_path, root = sys.argv[1], sys.argv[2]
    scheduler = sys.argv[3] if len(sys.argv) > 3 else "sync"
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else None
    with open(spec_path) as handle:
        spec = DatasetSpec.from_dict(json.load(handle))
    print("started", flush=True)
    generate(spec, root, scheduler=scheduler, workers=workers)
    print("finished", flush=True)


if __name__ == "__main__":
    main()
