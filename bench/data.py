"""Seeded benchmark datasets of any size, cached under /tmp/bench-data (EWH_BENCH_DATA).

The generator keeps a whole dataset in memory (~1.3 GB per 1M events), so big sizes are built
by tiling: one base set (at most BASE_EVENTS events, `ewh.sample.generator.generate` with the seed)
is copied k times. Copy 0 is the base unchanged; copy c >= 1 gets every identity prefixed, so
the copies are disjoint populations with the same behavior:

    messageId, anonymousId, previousId   "<id>"      -> "c<c>-<id>"
    userId (usr_...), order ids (ord_...) "usr_<hex>" -> "usr_c<c>-<hex>"
    e-mail addresses                      "...@example.com" -> "...+c<c>@example.com"

Times are not shifted: copies share the calendar, so a day file holds k times the base's
events of that day. Copies are made with bytes.replace on whole day files (GB/s, no JSON parse),
and the SQL tiling in `tile_raw_events` applies the very same rewrite to raw.events rows,
so a warehouse tiled in SQL holds what `ewh load` of the tiled NDJSON would have written
(except the per-file source, checksum and load ids).

Layout, one folder per (events, seed): `<root>/e<events>-s<seed>/events-YYYY-MM-DD.ndjson`
and `dataset.json`. A folder is complete once its `dataset.json` exists.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.sample.generator import generate

BASE_EVENTS = 1_000_000
DAYS = 90
END = datetime(2026, 10, 1)  # fixed: cached data and as_of stay reproducible
AS_OF = "2026-10-01 00:00:00"


def data_root() -> Path:
    return Path(os.environ.get("EWH_BENCH_DATA", "/tmp/bench-data"))


@dataclass(frozen=True, slots=True)
class Dataset:
    folder: Path
    events: int  # lines in all day files (accepted + duplicates + malformed)
    seed: int
    copies: int
    base_events: int

    @property
    def day_files(self) -> list[Path]:
        return sorted(self.folder.glob("events-*.ndjson"))


def _replacements(copy: int) -> list[tuple[bytes, bytes]]:
    tag = f"c{copy}-".encode()
    return [
        (b'"messageId":"', b'"messageId":"' + tag),
        (b'"anonymousId":"', b'"anonymousId":"' + tag),
        (b'"previousId":"', b'"previousId":"' + tag),
        (b'"usr_', b'"usr_' + tag),
        (b'"ord_', b'"ord_' + tag),
        (b'@example.com"', b"+" + tag.rstrip(b"-") + b'@example.com"'),
    ]


def rewrite_copy(data: bytes, copy: int) -> bytes:
    """The NDJSON text of copy `copy` of `data` (copy 0 is `data` itself)."""
    if copy == 0:
        return data
    for old, new in _replacements(copy):
        data = data.replace(old, new)
    return data


def sql_rewrite(column: str, copy_expr: str) -> str:
    """SQL doing `rewrite_copy` on a text column; copy_expr is an integer SQL expression."""
    tag = f"('c' || cast({copy_expr} as varchar) || '-')"
    expr = column
    for old, new_prefix, new_suffix in (
        ('"messageId":"', '\'"messageId":"\' || ' + tag, ""),
        ('"anonymousId":"', '\'"anonymousId":"\' || ' + tag, ""),
        ('"previousId":"', '\'"previousId":"\' || ' + tag, ""),
        ('"usr_', "'\"usr_' || " + tag, ""),
        ('"ord_', "'\"ord_' || " + tag, ""),
    ):
        expr = f"replace({expr}, '{old}', {new_prefix}{new_suffix})"
    expr = (f"replace({expr}, '@example.com\"', "
            f"'+c' || cast({copy_expr} as varchar) || '@example.com\"')")
    return f"(case when {copy_expr} = 0 then {column} else {expr} end)"


def _generate_base(events: int, seed: int) -> Dataset:
    folder = data_root() / f"e{events}-s{seed}"
    marker = folder / "dataset.json"
    if not marker.exists():
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate(tmp, events=events, seed=seed, days=DAYS, end=END)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return Dataset(folder, events, seed, 1, events)


def dataset(events: int, seed: int = 7, *, only_last_day: bool = False) -> Dataset:
    """The cached dataset of `events` events (built on first use).

    Up to BASE_EVENTS: generated directly. Above: BASE_EVENTS tiled k = round(events /
    BASE_EVENTS) times (the size is k * BASE_EVENTS). only_last_day: write just the last day
    file of the tiled set (for runs whose bulk raw.events is tiled in SQL, see
    tile_raw_events); such a folder is marked by `dataset.partial.json`.
    """
    if events <= BASE_EVENTS:
        return _generate_base(events, seed)
    base = _generate_base(BASE_EVENTS, seed)
    copies = max(1, round(events / BASE_EVENTS))
    size = copies * BASE_EVENTS
    folder = data_root() / f"e{size}-s{seed}"
    full_marker, partial_marker = folder / "dataset.json", folder / "dataset.partial.json"
    if full_marker.exists() or (only_last_day and partial_marker.exists()):
        return Dataset(folder, size, seed, copies, BASE_EVENTS)
    folder.mkdir(parents=True, exist_ok=True)
    files = base.day_files[-1:] if only_last_day else base.day_files
    for day_file in files:
        data = day_file.read_bytes()
        tmp = folder / (day_file.name + ".tmp")
        with tmp.open("wb") as out:
            for copy in range(copies):
                out.write(rewrite_copy(data, copy))
        tmp.rename(folder / day_file.name)
    meta = {"events": size, "seed": seed, "copies": copies, "base_events": BASE_EVENTS,
            "base": str(base.folder), "days": DAYS, "end": END.isoformat()}
    marker = partial_marker if only_last_day else full_marker
    marker.write_text(json.dumps(meta, indent=2) + "\n")
    return Dataset(folder, size, seed, copies, BASE_EVENTS)


RAW_EVENT_COLUMNS = ("message_id", "message_type", "event_name", "user_id", "anonymous_id",
                     "occurred_at", "sent_at", "received_at", "payload", "source",
                     "file_checksum", "load_id", "loaded_at")


def tile_raw_events(template: Path, warehouse: Path, copies: int) -> int:
    """Fill `warehouse`'s raw tables with `copies` copies of `template`'s raw.events.

    `template` is a warehouse `ewh load` wrote from the base files; ids and payloads get the
    same rewrite as the tiled NDJSON. Returns the rows in raw.events.
    """
    shutil.copyfile(template, warehouse)  # the raw schema, manifest and copy 0 as loaded
    con = duckdb.connect(str(warehouse))
    try:
        ensure_raw_tables(con)  # a template cached before a raw table existed lacks it
        con.execute(f"attach '{template}' as tpl (read_only)")
        if copies > 1:
            def tag(col: str) -> str:
                return f"case when {col} is null then null else 'c' || c.copy || '-' || {col} end"

            def usr(col: str) -> str:
                return (f"case when {col} like 'usr\\_%' escape '\\' "
                        f"then 'usr_c' || c.copy || '-' || {col}[5:] else {col} end")

            exprs = {
                "message_id": tag("e.message_id"),
                "user_id": usr("e.user_id"),
                "anonymous_id": tag("e.anonymous_id"),
                "payload": sql_rewrite("e.payload", "c.copy"),
            }
            select = ", ".join(exprs.get(col, f"e.{col}") for col in RAW_EVENT_COLUMNS)
            con.execute(
                f"insert into raw.events ({', '.join(RAW_EVENT_COLUMNS)}) "
                f"select {select} from tpl.raw.events e, "
                f"(select range as copy from range(1, {copies})) c")
        [(rows,)] = con.execute("select count(*) from raw.events").fetchall()
        con.execute("checkpoint")
    finally:
        con.close()
    return int(rows)
