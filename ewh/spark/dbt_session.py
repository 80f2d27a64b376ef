"""dbt commands on one local Spark session: the JVM starts once for many commands.

Each `dbt` CLI call on the spark target starts its own JVM (about 7 s). `SparkDbtSession`
runs a worker process (`python -m ewh.spark.dbt_session`) that invokes dbt programmatically
(dbtRunner) once per command, so every command shares the worker's Spark session, its
catalog and its cached file listings. The worker reads one JSON command per line on stdin and
answers one JSON line on the pipe it was given; everything dbt and Spark print goes to a log
file. After `parse`, every later command reuses that manifest (dbtRunner(manifest=...)): a new
`--vars` (each batch's as_of) would otherwise make dbt re-parse the whole project, about 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ewh.common.settings import PROJECT_ROOT


class SparkDbtError(RuntimeError):
    """A dbt command on Spark did not succeed; the message names the failed nodes."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    seconds: float
    nodes: int


def spark_environment(spark_warehouse: Path, lake_dir: Path,
                      small_data: bool = False) -> dict[str, str]:
    """The variables profiles.yml's spark target reads (see docs/spark.md)."""
    return {
        "EWH_SPARK_SMALL_DATA": "1" if small_data else "",
        "EWH_DBT_TARGET": "spark",
        "EWH_SPARK_WAREHOUSE": str(spark_warehouse),
        "EWH_LAKE_DIR": str(lake_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TZ": "UTC",
        "PYSPARK_PYTHON": sys.executable,
    }


class SparkDbtSession:
    """A worker process running dbt commands on one Spark session; use as a context manager."""

    def __init__(self, spark_warehouse: Path, lake_dir: Path, log_path: Path,
                 project_dir: Path = PROJECT_ROOT, *, small_data: bool = False) -> None:
        self.project_dir = project_dir
        self.log_path = log_path
        self.env = {**os.environ, **spark_environment(spark_warehouse, lake_dir, small_data)}
        self._process: subprocess.Popen[str] | None = None
        self._answers: IO[str] | None = None

    def __enter__(self) -> SparkDbtSession:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ewh.spark.dbt_session", str(write_fd)],
                stdin=subprocess.PIPE, stdout=log, stderr=log, text=True, env=self.env,
                cwd=self.project_dir, pass_fds=(write_fd,))
        os.close(write_fd)
        self._answers = os.fdopen(read_fd, "r")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._answers is not None:
            self._answers.close()

    def dbt(self, *args: str) -> CommandResult:
        """`dbt <args>` on the project; raises SparkDbtError naming what failed."""
        assert self._process is not None and self._process.stdin is not None
        assert self._answers is not None
        command = [*args, "--project-dir", str(self.project_dir),
                   "--profiles-dir", str(self.project_dir)]
        self._process.stdin.write(json.dumps({"args": command}) + "\n")
        self._process.stdin.flush()
        line = self._answers.readline()
        if not line:
            raise SparkDbtError(f"the Spark dbt worker stopped; see {self.log_path}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise SparkDbtError(f"dbt {args[0]} failed on Spark: {answer['failures']} "
                                f"(log: {self.log_path})")
        return CommandResult(answer["seconds"], answer["nodes"])

    def parse(self, *args: str) -> CommandResult:
        """`dbt parse <args>` (it writes manifest.json); the later commands run on this
        manifest, so give them the same target path and no other project or profile."""
        return self.dbt("parse", *args)


def _failures(result: Any) -> list[str]:
    failed = []
    for node in getattr(result, "results", None) or []:
        status = str(getattr(node, "status", ""))
        if status.lower() in {"error", "fail", "runtimeerror"}:
            message = (getattr(node, "message", "") or "").strip().splitlines()
            failed.append(f"{node.node.unique_id}: {status}: {' '.join(message)[:600]}")
    return failed


def _serve(answers: IO[str]) -> None:
    from dbt.cli.main import dbtRunner

    manifest = None  # the last `parse` command's
    for line in sys.stdin:
        command = json.loads(line)
        started = time.monotonic()
        parse = command["args"][0] == "parse"
        outcome = dbtRunner(manifest=None if parse else manifest).invoke(command["args"])
        if parse and outcome.success:
            manifest = outcome.result
        failures = _failures(outcome.result)
        if not outcome.success and not failures:
            failures = [repr(outcome.exception)[:2000]]
        nodes = len(getattr(outcome.result, "results", None) or [])
        answers.write(json.dumps({"ok": outcome.success, "failures": failures, "nodes": nodes,
                                  "seconds": round(time.monotonic() - started, 3)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    with os.fdopen(int(sys.argv[1]), "w") as pipe:
        _serve(pipe)
