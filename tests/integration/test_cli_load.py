"""`ewh load` on the command line: progress on long work, and paths that match nothing."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from ewh.cli.load import LoadProgressDisplay
from ewh.cli.main import main
from ewh.ingest.loader import load_files


def _write(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({
        "type": "track", "messageId": f"{path.stem}-{i}", "anonymousId": "a",
        "event": "Product Viewed", "timestamp": "2026-10-01T12:00:00Z"}) + "\n"
        for i in range(count)))
    return path


def test_a_load_whose_paths_match_nothing_exits_non_zero(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It used to print "nothing to load" and exit 0, so a mistyped glob went unnoticed.
    pattern = str(tmp_path / "events-2026-*.ndjson")
    assert main(["load", pattern, "--warehouse", str(tmp_path / "w.duckdb")]) == 1
    assert f"no files matched {pattern}" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


def test_an_empty_landing_zone_is_no_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EWH_LANDING_DIR", str(tmp_path))
    assert main(["load", "--warehouse", str(tmp_path / "w.duckdb")]) == 0
    assert "nothing to load" in capsys.readouterr().out


def test_in_a_log_each_finished_file_is_a_progress_line_with_lines_per_second(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _write(tmp_path / "a.ndjson", 3), _write(tmp_path / "b.ndjson", 5)
    assert main(["load", str(a), str(b), "--warehouse", str(tmp_path / "w.duckdb")]) == 0
    progress = capsys.readouterr().err.splitlines()
    assert [line.split(" lines (")[0] for line in progress] == [
        "[1/2 files] a.ndjson: 3", "[2/2 files] b.ndjson: 8"]
    assert all(re.search(r"\(\d[\d,]* lines/s\)$", line) for line in progress)


def test_on_a_terminal_a_bar_shows_bytes_files_and_lines_per_second(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"{name}.ndjson", 2_000) for name in "abc"]
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    with LoadProgressDisplay(console, files) as progress:
        load_files(files, tmp_path / "w.duckdb", progress=progress, landing_dir=tmp_path)
        progress.bar.refresh()  # type: ignore[union-attr]  # draw the last state
        last = screen.getvalue()
    assert "3/3 files" in last
    assert re.search(r"6,000 lines \(\d[\d,]* lines/s\)", last)
    total = sum(f.stat().st_size for f in files)
    assert f"{total / 1000:.1f}/{total / 1000:.1f} kB" in last
