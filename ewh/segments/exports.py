"""Segment exports for email and ad tools: current members, and who entered or exited.

For each segment, `<exports>/<segment>/` holds (folders 0700, files 0600: personal data):
- `members.parquet|csv`: everyone in the segment now, with what destinations reach them by
  (docs/privacy.md): `member_ref`, a keyed pseudonym of the member that stays the same
  across exports (what `deletions` names), `email_sha256`, the SHA-256 of the trimmed,
  lower-cased address that ad platforms' customer-match uploads expect, and `email`, the
  address decrypted with the member's data key (omitted when EWH_EXPORT_PLAIN_EMAIL is
  false). Segments hold consented users only, so only they are reachable;
- `entered.parquet|csv`: members now who were not in the previous export;
- `exited.parquet|csv`: members of the previous export who are gone now;
- `export.json`: when, how many, and the time of the export the delta is against;
- `deletions.parquet|csv`: members erased since (ewh.privacy.erasure), once each, by
  member_ref and email_sha256: what a destination needs to delete them on its side. An
  erased member is never in `exited`.

For dynamic email content, `members` and `entered` also carry each member's best send time
(`send_hour_utc`, `send_weekday`, `send_time_source` from marts.user_send_times) and
recommendations (`recommended_products`, product ids in rank order joined by `|`, and
`recommendation_evidence`, the top one's "because you viewed X", from
marts.user_recommendations), when the serving copy has those tables.

Every file is written beside its final name and renamed into place, and `members` is
renamed last: it is the baseline of the next delta, so a crash midway repeats the delta
instead of losing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ewh.common.clock import utc_now
from ewh.common.duckdb_tables import has_table
from ewh.common.settings import get_settings
from ewh.common.sql_text import quote_ident, sql_literal
from ewh.privacy.files import private_dir, tighten
from ewh.privacy.keys import DataKeys, PrivacyKeys

FORMATS = (("parquet", "format parquet"), ("csv", "format csv, header true"))
# OWASP CSV injection: a spreadsheet runs a cell starting with one of these as a formula
# (=HYPERLINK(...) in a userId). CSV text cells starting so get a leading ' (shown as text,
# not part of the value); the Parquet files keep every value exact.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_TYPES = ("VARCHAR", "JSON")


@dataclass(frozen=True)
class ExportResult:
    segment: str
    rows: int
    entered: int
    exited: int
    parquet_path: Path
    csv_path: Path
    exported_at: datetime
    previous_exported_at: datetime | None


def _previous_export(target: Path) -> tuple[Path | None, datetime | None]:
    members = target / "members.parquet"
    manifest = target / "export.json"
    if not members.exists():
        return None, None
    when = None
    if manifest.exists():
        when = datetime.fromisoformat(json.loads(manifest.read_text())["exported_at"])
    return members, when


def csv_safe(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """`query` with every text column escaped against formula injection (FORMULA_STARTS)."""
    columns = con.execute(f"select * from ({query}) limit 0").description
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_STARTS)
    projection = []
    for name, type_code, *_ in columns:
        column = quote_ident(name)
        if str(type_code) in TEXT_TYPES:
            text = f"{column}::varchar"
            projection.append(f"case when left({text}, 1) in ({starts}) "
                              f"then concat(chr(39), {text}) else {text} end as {column}")
        else:
            projection.append(column)
    return f"select {', '.join(projection)} from ({query})"


def _write(con: duckdb.DuckDBPyConnection, query: str, target: Path, stem: str) -> int:
    """Write `query` as <stem>.partial files; returns the row count."""
    rows = con.execute(f"select count(*) from ({query})").fetchone()[0]
    for suffix, options in FORMATS:
        partial = target / f"{stem}.{suffix}.partial"
        source = csv_safe(con, query) if suffix == "csv" else query
        con.execute(f"copy ({source}) to {sql_literal(str(partial))} ({options})")
    return int(rows)


def _promote(target: Path, stem: str) -> None:
    for suffix, _ in FORMATS:
        os.replace(target / f"{stem}.{suffix}.partial", target / f"{stem}.{suffix}")


def _reachability(con: duckdb.DuckDBPyConnection, segment: str, plain_email: bool) -> str:
    """The segment's rows (with the promotion columns) with member_ref and, when the serving
    copy has the contacts mart, email_sha256 (and email): decrypted here, never stored
    decrypted anywhere else."""
    relation = f"({_members_query(con, segment)})"
    if not has_table(con, "marts", "dim_user_contacts"):
        return f"select s.*, ewh_member_ref(s.user_key) as member_ref from {relation} s"
    email = "ewh_decrypt(c.email_key_subject, c.email_encrypted)"
    plain = f", {email} as email" if plain_email else ""
    return (f"select s.*, ewh_member_ref(s.user_key) as member_ref{plain}, "
            f"sha256(lower(trim({email}))) as email_sha256 "
            f"from {relation} s left join marts.dim_user_contacts c on s.user_key = c.user_key")


def _register_privacy(con: duckdb.DuckDBPyConnection, keys: PrivacyKeys) -> None:
    data_keys = DataKeys(keys)

    def member_ref(user_keys: pa.Array) -> pa.Array:
        return pa.array([None if k is None else keys.pseudonym("member", k)
                         for k in user_keys.to_pylist()], pa.string())

    def decrypt(subjects: pa.Array, tokens: pa.Array) -> pa.Array:
        return pa.array([None if s is None or t is None else data_keys.decrypt(s, t)
                         for s, t in zip(subjects.to_pylist(), tokens.to_pylist(),
                                         strict=True)], pa.string())

    varchar = duckdb.sqltype("VARCHAR")
    con.create_function("ewh_member_ref", member_ref, [varchar], varchar, type="arrow",
                        null_handling="special")
    con.create_function("ewh_decrypt", decrypt, [varchar, varchar], varchar, type="arrow",
                        null_handling="special")


def _members_query(con: duckdb.DuckDBPyConnection, segment: str) -> str:
    """The segment's rows, with the promotion columns the serving copy can give them."""
    columns, joins = [], []
    if has_table(con, "marts", "user_send_times"):
        columns.append("send_times.send_hour_utc, send_times.send_weekday, "
                       "send_times.send_time_source")
        joins.append("left join marts.user_send_times as send_times "
                     "on members.user_key = send_times.user_key")
    if has_table(con, "marts", "user_recommendations"):
        columns.append("recommended.recommended_products, "
                       "recommended.recommendation_evidence")
        joins.append(
            "left join (select user_key, string_agg(product_id, '|' order by "
            "recommendation_rank) as recommended_products, min(case when "
            "recommendation_rank = 1 then evidence end) as recommendation_evidence "
            "from marts.user_recommendations group by user_key) as recommended "
            "on members.user_key = recommended.user_key")
    extra = "".join(f", {c}" for c in columns)
    return (f"select members.*{extra} from segments.{quote_ident(segment)} as members "
            + " ".join(joins))


def export_segment(source: Path, segment: str, out_dir: Path,
                   keys: PrivacyKeys | None = None,
                   plain_email: bool | None = None) -> ExportResult:
    """Export segments.<segment> from the DuckDB file `source` (the serving copy)."""
    if keys is None or plain_email is None:
        settings = get_settings()
        keys = keys or PrivacyKeys.from_settings(settings)
        plain_email = settings.export_plain_email if plain_email is None else plain_email
    private_dir(out_dir)
    target = private_dir(out_dir / segment)
    with _export_lock(target):
        return _export(source, segment, target, keys, plain_email)


@contextlib.contextmanager
def _export_lock(target: Path) -> Iterator[None]:
    """One export of a segment at a time (two Dagster runs may export it at once): the
    second waits, then computes who entered and exited against the first's export."""
    fd = os.open(target / ".export.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _export(source: Path, segment: str, target: Path, keys: PrivacyKeys,
            plain_email: bool) -> ExportResult:
    previous, previous_at = _previous_export(target)
    with duckdb.connect(str(source), read_only=True) as con:
        _register_privacy(con, keys)
        current = _reachability(con, segment, plain_email)
        if previous is None:
            prior = f"select * from ({current}) where false"
        else:
            prior = f"select * from read_parquet({sql_literal(str(previous))})"
        entered_q = (f"select * from ({current}) c where c.user_key not in "
                     f"(select user_key from ({prior})) order by user_key")
        exited_q = (f"select * from ({prior}) p where p.user_key not in "
                    f"(select user_key from ({current})) order by user_key")
        rows = _write(con, f"{current} order by user_key", target, "members")
        entered = _write(con, entered_q, target, "entered")
        exited = _write(con, exited_q, target, "exited")
    exported_at = utc_now()
    _promote(target, "entered")
    _promote(target, "exited")
    (target / "export.json.partial").write_text(json.dumps({
        "segment": segment, "exported_at": exported_at.isoformat(), "members": rows,
        "entered": entered, "exited": exited,
        "previous_exported_at": previous_at.isoformat() if previous_at else None,
    }, indent=2))
    _promote(target, "members")
    os.replace(target / "export.json.partial", target / "export.json")
    tighten(target)
    return ExportResult(segment, rows, entered, exited, target / "members.parquet",
                        target / "members.csv", exported_at, previous_at)
