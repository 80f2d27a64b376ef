"""`make dev`: the Dagster UI on 127.0.0.1:3000.

`dagster dev` started in the background from a non-interactive shell inherits an ignored
SIGINT and then ignores SIGTERM too; restoring the default handler before exec makes
SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from ewh.paths import PROJECT_ROOT, warehouse_path
from orchestration.instance import ensure_dagster_home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="3000")
    args = parser.parse_args()
    ensure_dagster_home()
    os.environ["EWH_WAREHOUSE"] = str(warehouse_path())
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    dagster = str(Path(sys.executable).with_name("dagster"))
    os.chdir(PROJECT_ROOT)
    os.execv(dagster, [dagster, "dev", "-m", "orchestration.definitions",
                       "-h", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
