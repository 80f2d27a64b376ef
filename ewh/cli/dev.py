"""`ewh dev`: the Dagster UI (`make dev`), on 127.0.0.1:3000 by default.

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

from ewh.cli.main import Handler, command


@command("dev", "serve the Dagster UI for this project (the code location in orchestration/)")
def _dev(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port (3000)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import PROJECT_ROOT
    from orchestration.instance import ensure_dagster_home

    home = ensure_dagster_home()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    dagster = str(Path(sys.executable).with_name("dagster"))
    print(f"Dagster UI on http://{args.host}:{args.port} (instance {home})", flush=True)
    os.chdir(PROJECT_ROOT)
    os.execve(dagster, [dagster, "dev", "-m", "orchestration.definitions",
                        "-h", args.host, "-p", str(args.port)],
              {**os.environ, "DAGSTER_HOME": str(home)})
    return 0  # not reached: exec replaced this process
