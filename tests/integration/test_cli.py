"""The `ewh` command line's rough edges: --version, one segment name form, erasing an unknown
user, and a clean stderr (no progress bars when not on a terminal, no teardown noise)."""

from __future__ import annotations

from importlib.metadata import version

from history_warehouse import run_ewh


def test_version(backfilled):
    done = run_ewh(backfilled.env, "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"ewh {version('engagement-warehouse')}"


def test_segments_list_shows_only_the_segments_named_either_way(backfilled):
    done = run_ewh(backfilled.env, "segments", "list", "cart_abandoners", "seg_leads")
    assert done.returncode == 0, done.stderr
    rows = [line.split()[0] for line in done.stdout.splitlines()[2:]]
    assert rows == ["seg_cart_abandoners", "seg_leads"]
    unknown = run_ewh(backfilled.env, "segments", "list", "no_such_segment")
    assert unknown.returncode == 1 and "unknown segment 'no_such_segment'" in unknown.stderr


def test_export_accepts_the_short_name(backfilled):
    done = run_ewh(backfilled.env, "segments", "export", "cart_abandoners")
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    assert (backfilled.root / "exports" / "seg_cart_abandoners" / "members.parquet").exists()


def test_erasing_an_unknown_user_fails_with_a_message(backfilled):
    done = run_ewh(backfilled.env, "erase", "nobody-with-this-id")
    assert done.returncode == 1
    assert "no userId 'nobody-with-this-id'" in done.stderr and "nothing erased" in done.stderr


def test_quality_leaves_stderr_empty(backfilled):
    done = run_ewh(backfilled.env, "quality", "--no-docs", "--no-record", "dim_users",
                   "seg_cart_abandoners")
    assert done.returncode == 0, done.stdout[-2000:]
    assert done.stderr == ""


def test_generate_prints_its_summary_and_no_progress_when_piped(backfilled, tmp_path):
    done = run_ewh(backfilled.env, "generate", "--out", str(tmp_path), "--events", "500")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("wrote 500 lines")
