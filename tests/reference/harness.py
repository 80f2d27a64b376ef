"""Generate a batch of histories, load it with the real loader, run ONE real `dbt build` and
read back what the reference compares; then compare table by table.

Each comparison returns `Disagreement`s; `explain` prints, for a few of them, the history's
events (compact) and both answers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from dbt_runner import dbt_command, warehouse_in

from ewh.ingest.loader import load_files

from . import generator, model

AS_OF = datetime(2026, 6, 30, 12, 0, 0)
AS_OF_VAR = "2026-06-30 12:00:00"
# Each batch is built twice: a full build at an earlier as_of, then the incremental build at
# AS_OF that the comparisons read; the segment history must record what changed in between.
EARLY_AS_OF = datetime(2026, 6, 20, 9, 30, 0)
EARLY_AS_OF_VAR = "2026-06-20 09:30:00"
FLOAT_TOLERANCE = 0.011  # money is compared to the cent (rounding), other floats exactly-ish


@dataclass(repr=False)  # pytest prints test arguments: keep them short
class Batch:
    seed: int
    batch: int
    users: int
    messages: list[dict]
    invalid_lines: int
    reference: model.Reference
    rows_rejected: int
    dbt_returncode: int
    dbt_output: str
    tables: dict[str, list[dict]] = field(default_factory=dict)
    person_of_key: dict[str, str] = field(default_factory=dict)  # warehouse user_key -> person
    early_reference: model.Reference | None = None
    early_key_of_message: dict[str, str] = field(default_factory=dict)  # at EARLY_AS_OF

    def __repr__(self) -> str:
        return f"Batch(seed={self.seed}, batch={self.batch}, users={self.users})"


@dataclass
class Disagreement:
    table: str
    key: Any
    column: str
    reference: Any
    warehouse: Any
    history: str | None  # message-id prefix of the history, when one history explains it

    @property
    def family(self) -> str:
        """The generator family (generator.FAMILIES) whose history or ids this row is about."""
        if self.history:
            return generator.family_of(self.history)
        text = self.key[0] if isinstance(self.key, tuple) else str(self.key)
        return text.split(":", 1)[0] if ":" in text else "clean"


def _dbt(warehouse: Path, work_dir: Path, *args: str) -> tuple[int, str]:
    result = dbt_command(warehouse, work_dir, *args)
    return result.returncode, result.stdout


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    try:
        cursor = con.execute(sql)
    except duckdb.Error:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def build_batch(seed: int, batch: int, users: int, work_dir: Path,
                families: tuple[str, ...] = tuple(generator.FAMILIES), *,
                unit_tests: bool = True) -> Batch:
    """unit_tests: run dbt's unit tests in the early build (never in the second: they check the
    SQL, not the data, so one run of them per module is enough)."""
    messages, invalid = generator.generate(seed, users, AS_OF, batch, families)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"events_{seed}_{batch}.ndjson"
    generator.write_ndjson(path, messages, invalid, seed)
    warehouse = warehouse_in(work_dir)  # each batch's own folder, one shared name
    warehouse.unlink(missing_ok=True)
    (result,) = load_files([path], warehouse)
    no_unit_tests = ["--exclude-resource-type", "unit_test"]
    early_returncode, early_output = _dbt(warehouse, work_dir, "build", "--vars",
                                          json.dumps({"as_of": EARLY_AS_OF_VAR}),
                                          *([] if unit_tests else no_unit_tests))
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        early_keys = {row["message_id"]: row["user_key"] for row in _rows(
            con, "select message_id, user_key from intermediate.int_events_stitched")}
    finally:
        con.close()
    returncode, output = _dbt(warehouse, work_dir, "build", "--vars",
                              json.dumps({"as_of": AS_OF_VAR}), *no_unit_tests)
    if early_returncode != 0:
        returncode, output = early_returncode, early_output
    reference = model.compute(messages, AS_OF)
    out = Batch(seed, batch, users, messages, len(invalid), reference, result.rows_rejected,
                returncode, output)
    out.early_reference = model.compute(messages, EARLY_AS_OF)
    out.early_key_of_message = early_keys
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        stitched = _rows(con, "select message_id, user_key from intermediate.int_events_stitched")
        first: dict[str, str] = {}
        for row in stitched:
            key = row["user_key"]
            if key not in first or row["message_id"] < first[key]:
                first[key] = row["message_id"]
        out.person_of_key = first
        out.tables["int_events_stitched"] = stitched
        out.tables["fct_sessions"] = _rows(con, """
            select s.*, e.message_id as first_message_id
            from marts.fct_sessions as s
            left join intermediate.int_sessionized_events as e
                on e.session_id = s.session_id and e.session_event_number = 1""")
        out.tables["dim_users"] = _rows(con, "select * from marts.dim_users")
        for segment in model.SEGMENTS:
            out.tables[segment] = _rows(con, f"select * from segments.{segment}")
        out.tables["fct_campaign_engagement"] = _rows(
            con, "select * from marts.fct_campaign_engagement")
        out.tables["fct_experiment_results"] = _rows(
            con, "select * from marts.fct_experiment_results")
        for table in ("segment_membership_history", "segment_memberships",
                      "segment_sizes_daily", "segment_transitions"):
            out.tables[table] = _rows(con, f"select * from segments.{table}")
    finally:
        con.close()
    return out


def _history(person_or_message: str | None) -> str | None:
    if not person_or_message or "-" not in person_or_message:
        return None
    return person_or_message.rsplit("-", 1)[0]


def _same(a: Any, b: Any, money: bool = False) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= (FLOAT_TOLERANCE if money else 1e-6)
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return a == b


def _compare_keyed(table: str, ref: dict, wh: dict, columns: list[str],
                   money: tuple[str, ...] = ()) -> list[Disagreement]:
    out: list[Disagreement] = []
    for key in sorted(set(ref) | set(wh), key=str):
        r, w = ref.get(key), wh.get(key)
        history = _history(key if isinstance(key, str) else None)
        if r is None or w is None:
            out.append(Disagreement(table, key, "<row>", "present" if r else "absent",
                                    "present" if w else "absent", history))
            continue
        for column in columns:
            if not _same(r.get(column), w.get(column), column in money):
                out.append(Disagreement(table, key, column, r.get(column), w.get(column),
                                        history))
    return out


# ---- the comparisons, one per table and rule group --------------------------------------

def compare_identity(b: Batch) -> list[Disagreement]:
    """Every stitched event's person (rule 3): same partition of events into people."""
    wh = {row["message_id"]: {"person": b.person_of_key.get(row["user_key"])}
          for row in b.tables["int_events_stitched"]}
    ref = {m: {"person": p} for m, p in b.reference.message_person.items()}
    return _compare_keyed("int_events_stitched", ref, wh, ["person"])


def compare_sessions(b: Batch) -> list[Disagreement]:
    wh = {}
    for row in b.tables["fct_sessions"]:
        row = dict(row, person=b.person_of_key.get(row["user_key"]))
        wh[row["first_message_id"]] = row
    return _compare_keyed("fct_sessions", b.reference.sessions, wh,
                          ["person", "started_at", "ended_at", "event_count", "page_views",
                           "orders", "has_purchase", "revenue"], ("revenue",))


DIM_GROUPS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "users": (["is_identified"], ()),
    "activity": (["first_seen_at", "last_seen_at", "active_days", "sessions", "sessions_30d",
                  "active_days_30d"], ()),
    "orders": (["orders", "revenue", "last_order_at", "first_order_at", "revenue_365d",
                "orders_365d"], ("revenue", "revenue_365d")),
    "lifecycle": (["lifecycle_stage"], ()),
    "rfm": (["recency_score", "frequency_score"], ()),
    "email": (["emails_delivered", "emails_opened", "emails_opened_open_window",
               "recent_deliveries", "recent_deliveries_opened"], ()),
    "engagement": (["engagement_points_window", "engagement_points_recent",
                    "engagement_points_baseline"], ()),
    "browsing": (["product_views_browse_window", "cart_adds_browse_window",
                  "pricing_views_intent_window", "top_product_views_intent_window",
                  "last_cart_add_at"], ()),
    "consent": (["has_analytics_consent"], ()),
    "evidence": (["user_id", "first_identified_at", "days_since_last_order", "product_views",
                  "distinct_products_viewed", "last_product_view_at", "browsing_price_tier",
                  "cart_adds", "checkout_started_count", "first_cart_intent_at",
                  "last_pricing_view_at", "last_email_delivered_at", "last_email_engagement_at",
                  "top_product_id_intent_window", "engagement_score", "monetary_score",
                  "rfm_recency_days", "rfm_frequency", "rfm_monetary"], ("rfm_monetary",)),
}


def compare_dim_users(b: Batch, group: str) -> list[Disagreement]:
    columns, money = DIM_GROUPS[group]
    wh = {}
    for row in b.tables["dim_users"]:
        person = b.person_of_key.get(row["user_key"], f"?{row['user_key']}")
        wh[person] = dict(row, is_identified=row.get("user_id") is not None)
    out = _compare_keyed(f"dim_users[{group}]", b.reference.dim_users, wh, columns, money)
    if group != "users":  # a missing or extra row is reported once, by the users group
        out = [d for d in out if d.column != "<row>"]
    return out


MONEY_COLUMNS = ("revenue", "revenue_365d", "rfm_monetary", "cart_value")


def compare_segment(b: Batch, segment: str) -> list[Disagreement]:
    """Who is in the segment, and for those in both, every evidence column the segment shows
    (the reference computes each from its column text; user_key is the key, not evidence)."""
    wh = {b.person_of_key.get(row["user_key"], f"?{row['user_key']}"): row
          for row in b.tables[segment]}
    ref = b.reference.segments[segment]
    out = [Disagreement(segment, key, "member", key in ref, key in wh, _history(key))
           for key in sorted(ref ^ set(wh), key=str)]
    for key in sorted(ref & set(wh)):
        expected = b.reference.dim_users[key]
        for column, value in wh[key].items():
            if column == "user_key":
                continue
            if column not in expected:
                out.append(Disagreement(segment, key, column, "<not in the reference>", value,
                                        _history(key)))
            elif not _same(expected[column], value, column in MONEY_COLUMNS):
                out.append(Disagreement(segment, key, column, expected[column], value,
                                        _history(key)))
    return out


def compare_campaigns(b: Batch) -> list[Disagreement]:
    wh = {row["campaign_id"]: row for row in b.tables["fct_campaign_engagement"]
          if row.get("channel") == "email"}
    return _compare_keyed("fct_campaign_engagement[email]", b.reference.campaigns, wh,
                          ["delivered", "unique_opens", "unique_clicks", "clicks", "sessions",
                           "session_users", "conversions", "converted_sessions", "revenue",
                           "unknown_currency_orders"], ("revenue",))


def compare_experiments(b: Batch) -> list[Disagreement]:
    wh = {(row["experiment_id"], row["variant"]): row
          for row in b.tables["fct_experiment_results"]}
    ref = {k: v for k, v in b.reference.experiments.items() if k[1] != "*multiple*"}
    return _compare_keyed("fct_experiment_results", ref, wh,
                          ["exposed_users", "converted_users"])


def compare_experiment_statistics(b: Batch) -> list[Disagreement]:
    """Every statistic of a variant row: rates, the comparison with the control (z test,
    Wald interval of the difference, delta-method interval of the lift: rule 8), and the
    sample-ratio mismatch as one chi-square test over all variants against an equal split."""
    wh = {(row["experiment_id"], row["variant"]): row
          for row in b.tables["fct_experiment_results"]}
    ref = {k: v for k, v in b.reference.experiments.items() if k[1] != "*multiple*"}
    columns = ["is_control", "orders_in_window", "revenue_in_window", "conversion_rate",
               "control_conversion_rate", "rate_difference", "lift", "z_score", "p_value",
               "difference_ci_lower", "difference_ci_upper", "lift_ci_lower", "lift_ci_upper",
               "is_significant", "experiment_users", "multi_variant_users", "exposure_share",
               "expected_share", "srm_chi_square", "srm_degrees_of_freedom", "srm_p_value",
               "has_sample_ratio_mismatch"]
    return _compare_keyed("fct_experiment_results", ref, wh, columns, ("revenue_in_window",))


def compare_experiment_multi_variant(b: Batch) -> list[Disagreement]:
    """Rule 8: users exposed to several variants are counted in a column of their own. The
    column's name is the experiments part's: any *multi* / *multiple* column is read."""
    out = []
    for (experiment, variant), row in b.reference.experiments.items():
        if variant != "*multiple*":
            continue
        wh_rows = [r for r in b.tables["fct_experiment_results"]
                   if r["experiment_id"] == experiment]
        columns = [c for r in wh_rows[:1] for c in r if "multi" in c.lower()]
        value = wh_rows[0][columns[0]] if wh_rows and columns else None
        if not _same(row["users"], value):
            out.append(Disagreement("fct_experiment_results", experiment,
                                    columns[0] if columns else "<multi-variant column>",
                                    row["users"], value, None))
    return out


def _expected_spells(b: Batch) -> dict[tuple[str, str, datetime], dict]:
    """segment_membership_history from the reference's members at the two builds, in the
    warehouse's user_key space (a reference person is keyed by one of its message ids, so the
    build's own stitched table names its user_key; the identity comparison proves the two
    partitions equal). A spell opens at the build where the user is first a member and
    closes at the first build where they are not."""
    assert b.early_reference is not None
    late_keys = {row["message_id"]: row["user_key"] for row in b.tables["int_events_stitched"]}
    early = {(b.early_key_of_message.get(person, f"?{person}"), segment)
             for segment, people in b.early_reference.segments.items() for person in people}
    late = {(late_keys.get(person, f"?{person}"), segment)
            for segment, people in b.reference.segments.items() for person in people}
    spells = {}
    for user_key, segment in early:
        current = (user_key, segment) in late
        spells[(user_key, segment, EARLY_AS_OF)] = {
            "exited_at": None if current else AS_OF, "is_current": current}
    for user_key, segment in late - early:
        spells[(user_key, segment, AS_OF)] = {"exited_at": None, "is_current": True}
    return spells


def _person_of_history_key(b: Batch, user_key: str) -> str | None:
    return _history(b.person_of_key.get(user_key) or user_key)


def compare_membership_history(b: Batch) -> list[Disagreement]:
    """segment_membership_history after the two builds: one spell per entry, closed at the
    build where the user left, the open one current."""
    wh = {(r["user_key"], r["segment"], r["entered_at"]): r
          for r in b.tables["segment_membership_history"]}
    out = _compare_keyed("segment_membership_history", _expected_spells(b), wh,
                         ["exited_at", "is_current"])
    for d in out:
        d.history = _person_of_history_key(b, d.key[0])
    return out


def compare_memberships(b: Batch) -> list[Disagreement]:
    """segment_memberships: the current spells, with the build they were entered at."""
    expected = {(k[0], k[1]): {"entered_at": k[2]}
                for k, spell in _expected_spells(b).items() if spell["is_current"]}
    wh = {(r["user_key"], r["segment"]): r for r in b.tables["segment_memberships"]}
    out = _compare_keyed("segment_memberships", expected, wh, ["entered_at"])
    for d in out:
        d.history = _person_of_history_key(b, d.key[0])
    return out


def compare_sizes_daily(b: Batch) -> list[Disagreement]:
    """segment_sizes_daily: every segment on every day from the first build's day to the
    last: the first build's members until the second build's day, then the second's."""
    spells = _expected_spells(b)
    first_day, last_day = EARLY_AS_OF.date(), AS_OF.date()
    expected = {}
    for segment in model.SEGMENTS:
        mine = [(k, v) for k, v in spells.items() if k[1] == segment]
        early = sum(1 for k, _ in mine if k[2] == EARLY_AS_OF)
        entered_late = sum(1 for k, _ in mine if k[2] == AS_OF)
        exited = sum(1 for _, v in mine if v["exited_at"] is not None)
        day = first_day
        while day <= last_day:
            if day == last_day:
                row = {"members": early + entered_late - exited, "users_entered": entered_late,
                       "users_exited": exited}
            else:
                row = {"members": early, "users_entered": early if day == first_day else 0,
                       "users_exited": 0}
            expected[(segment, day)] = row
            day += timedelta(days=1)
    wh = {(r["segment"], r["size_date"]): r for r in b.tables["segment_sizes_daily"]
          if r["segment"] in model.SEGMENTS}
    return _compare_keyed("segment_sizes_daily", expected, wh,
                          ["members", "users_entered", "users_exited"])


def compare_transitions(b: Batch) -> list[Disagreement]:
    """segment_transitions: lifecycle stage changes per day (reference: the lifecycle rule
    replayed at every milestone), users without analytics consent left out."""
    users: dict[tuple, set[str]] = defaultdict(set)
    counts: dict[tuple, int] = defaultdict(int)
    for person, row in b.reference.dim_users.items():
        if not row["has_analytics_consent"]:
            continue
        for stage_name, previous, entered_at in row["lifecycle_spells"]:
            if previous is not None:
                key = (entered_at.date(), previous, stage_name)
                users[key].add(person)
                counts[key] += 1
    expected = {k: {"users_moved": len(users[k]), "transitions": counts[k]} for k in users}
    wh = {(r["transition_date"], r["from_stage"], r["to_stage"]): r
          for r in b.tables["segment_transitions"]}
    return _compare_keyed("segment_transitions", expected, wh, ["users_moved", "transitions"])


# ---- printing -----------------------------------------------------------------------------

def _fmt_event(e: model.Event, reference: model.Reference) -> str:
    props = {k: v for k, v in e.properties.items()
             if k in ("order_id", "revenue", "currency", "email_id", "campaign_id",
                      "experiment_id", "variation_name", "product_id", "path", "previousId")}
    if e.previous_id:
        props["previousId"] = e.previous_id
    consent = "" if e.consent is None else f" consent={e.consent}"
    person = reference.message_person.get(e.message_id, "-")
    return (f"  {e.occurred_at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" {e.message_id.rsplit('-', 1)[1]}"
            f" {e.message_type}:{e.event_name or ''} [{e.event_type}] uid={e.user_id}"
            f" anon={e.anonymous_id} ch={e.channel}{consent} {props or ''} -> person"
            f" {person.rsplit('-', 1)[-1] if person != '-' else '-'}")


def explain(b: Batch, disagreements: list[Disagreement], limit: int = 4) -> str:
    lines = [f"{len(disagreements)} disagreement(s) in seed {b.seed} batch {b.batch} "
             f"(as_of {AS_OF_VAR}); reference vs warehouse:"]
    by_history: dict[str | None, list[Disagreement]] = defaultdict(list)
    for d in disagreements:
        by_history[d.history].append(d)
    for history, items in list(by_history.items())[:limit]:
        lines.append(f"- history {history}:")
        for d in items[:8]:
            lines.append(f"    {d.table} {d.key} {d.column}: reference={d.reference!r} "
                         f"warehouse={d.warehouse!r}")
        if history:
            for e in b.reference.events:
                if e.message_id.startswith(history + "-"):
                    lines.append(_fmt_event(e, b.reference))
    if len(by_history) > limit:
        lines.append(f"... and {len(by_history) - limit} more histories")
    return "\n".join(lines)
