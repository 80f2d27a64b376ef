"""Validate a 10M-row raw.events with the raw_events suite; report wall time and peak memory.

    python -m bench.quality [--rows 10000000]

The table is built in SQL (no Python rows). 0.1 % of the rows break the null-id rule and
0.1 % duplicate a message_id, so the failure path (counts and samples) is measured too.
The validation runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

from ewh.ingest.raw_tables import ensure_raw_tables

AS_OF = datetime(2026, 11, 1, 12, 0, 0)

VALIDATE = """
import json, sys, time
from datetime import datetime
from pathlib import Path
from ewh.quality.validate import validate_warehouse
started = time.perf_counter()
(result,) = validate_warehouse(Path(sys.argv[1]), suites=["raw_events"], build_docs=False,
                               as_of=datetime.fromisoformat(sys.argv[2]), segments=[],
                               project_dir=Path(sys.argv[3]), record_volumes=False)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "failures": [f.message for f in result.failures]}))
"""


def build(path: Path, rows: int) -> None:
    con = duckdb.connect(str(path))
    ensure_raw_tables(con)
    con.execute(f"""
        insert into raw.events select
            case when i % 1000 = 1 then 'm' || (i - 1) else 'm' || i end,
            'track', 'Product Viewed',
            case when i % 1000 = 2 then null else 'u' || (i % 50000) end,
            case when i % 1000 = 2 then null else 'a' || (i % 80000) end,
            timestamp '2026-11-01 10:00:00' - to_seconds(i % 7776000),
            timestamp '2026-11-01 10:00:00' - to_seconds(i % 7776000),
            timestamp '2026-11-01 10:00:00' - to_seconds(i % 7776000),
            '{{}}', 'bench', 'sha', 'load-1', timestamp '2026-11-01 11:00:00'
        from range({rows}) r(i)""")
    con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    from ewh.quality.project import PROJECT_DIR

    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        build(warehouse, args.rows)
        built = time.perf_counter() - started
        project = Path(tmp) / "gx_project"  # a copy: results and docs stay out of the repo
        shutil.copytree(PROJECT_DIR / "gx", project / "gx",
                        ignore=shutil.ignore_patterns("uncommitted"))
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", VALIDATE, str(warehouse), AS_OF.isoformat(),
                               str(project)], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"rows {args.rows:,}: built in {built:.1f} s; validation {report['seconds']:.1f} s "
          f"(process {wall:.1f} s incl. imports), peak RSS {peak_mib:.0f} MiB")
    for failure in report["failures"]:
        print(f"  {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
