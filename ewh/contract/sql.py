"""The event contract in SQL: the rules of ewh.contract.rules as one DuckDB query.

The loader runs this query over raw records so parsing and validation happen inside DuckDB
(vectorized, on every core) instead of once per record in Python. It gives the same reason,
field and detail as ewh.contract.validator, because both are built from the same compiled
schema rules and the same sentence templates; tests/unit/test_contract_differential.py proves it.

Two rules are read from the text, not from parsed fields: the size without the collector's
additions and the nesting depth. The query settles them for almost every record with a cheap
bound (the byte count; the count of `{` and `[`), and flags the rare rest `needs_python`: the
loader gives those to ewh.contract.validator, the collector's own validator, whose verdict
replaces the row's. Duplicate keys need nothing: DuckDB keeps the first, as the contract does.

Two entry points share one verdict query:
- `check_query(relation)`: input `record_number BIGINT, line BLOB, n_bytes INT, suspect BOOL`
  (ewh.ingest.readers); output OUTPUT_COLUMNS. Parameters: `$source_prefix` (the record's source
  is `<prefix>:<record_number>`), `$received_default` and `$timestamp_floor`.
- `verdict_query(lines)`: input `txt VARCHAR, raw, n_bytes INT, suspect BOOL` and passthrough,
  in file order; output VERDICT_COLUMNS, without source or detail, so it can stream straight from
  a file scan before line numbers exist. `detail_sql` adds the detail once the source is known.
  Parameters: `$received_default` (the intake time: the load's start) and `$timestamp_floor`.
The connection must have TimeZone set to UTC.
"""

from __future__ import annotations

from functools import cache

from ewh.common.sql_text import sql_literal
from ewh.contract.rules import (
    TIMESTAMP_EXPECTATION,
    Contract,
    FieldRule,
    TypeContract,
    load_contract,
)
from ewh.contract.validator import GROWTH, ID_NUMBER_EXPECTATION, SHOWN_CHARS

_VALUE_COLUMNS = ("rejected_message_id", "message_id", "message_type", "event_name", "user_id",
                  "anonymous_id", "occurred_at", "sent_at", "received_at", "payload")
OUTPUT_COLUMNS = ("record_number", "source", "raw_text", "reason", "field", "detail",
                  *_VALUE_COLUMNS, "needs_python")
# detail_tail: the detail after "Record <source> (messageId <id>): ", see detail_sql.
VERDICT_COLUMNS = ("raw_text", "reason", "field", "detail_tail", *_VALUE_COLUMNS,
                   "needs_python")
_EVENT_COLUMNS = ("message_id", "event_name", "user_id", "anonymous_id", "occurred_at",
                  "sent_at", "received_at")
_NUMBER_TYPES = ("BIGINT", "UBIGINT", "HUGEINT")


# DuckDB's json_valid also accepts trailing commas and NaN/Infinity, which RFC 8259 and the
# Python validator refuse. Such a token outside strings marks the record invalid. The regex is
# string-aware and slow, so it only runs on records the reader flagged as `suspect`.
_STRICT_JSON_VIOLATION = r'^(?:[^"]|"(?:[^"\\]|\\.)*")*(?:,[ \t\n\r]*[\]}]|(?i:nan|inf))'
_STRICT_JSON_LITERAL = sql_literal(_STRICT_JSON_VIOLATION)


def suspect_sql(text: str) -> str:
    """SQL that is true for every text that may hold a token _STRICT_JSON_VIOLATION looks for
    (and for some that do not): a comma before a closing bracket, or nan or inf in any case
    (inf is found by its "nf": one regex with a literal to scan for each, the cheapest form)."""
    return (rf"(regexp_matches({text}, ',[ \t\n\r]*[\]}}]') "
            f"or regexp_matches({text}, 'n(?:an|f)', 'i'))")


def _one_of(expr: str, values: tuple[str, ...] | list[str]) -> str:
    """`expr` is one of `values`. Not IN (...) nor list_contains: DuckDB plans those as mark
    joins, which made this query cost more to plan and start than to run on a chunk."""
    return "(" + " or ".join(f"{expr} = {sql_literal(v)}" for v in values) + ")"


class _Fields:
    """Each field any rule reads gets an index i: t_i (its json_type) and s_i (its text).

    Both come from one list-valued call each (one JSON parse per call, not one per field).
    Object fields need only their type; the JSON text of a value is only built inside the
    detail of a rejection, so accepted records never pay for it. A field that is only checked
    (no column) and only in some message types (previousId, groupId) is looked up apart, only
    in messages of those types: g_t_k and g_s_k, so the common record pays nothing for it.
    """

    def __init__(self, contract: Contract) -> None:
        names = ["type"]
        objects: set[str] = set()
        self.datetimes: list[str] = []
        self.matches: dict[tuple[str, str], str] = {}
        self.guarded: dict[str, list[str]] = {}  # field -> the message types that have it
        for name, types in _checked_only(contract).items():
            self.guarded[name] = types
        for tc in contract.types.values():
            for rule in tc.rules:
                for name in (rule.members or (rule.field,)):
                    if name not in names and name not in self.guarded:
                        names.append(name)
                if rule.kind == "object":
                    objects.add(rule.field)
                if rule.kind == "datetime" and rule.field not in self.datetimes:
                    self.datetimes.append(rule.field)
        self.names = names
        self.scalars = [n for n in names if n not in objects]

    def t(self, name: str) -> str:
        if name in self.guarded:
            return f"g_t_{list(self.guarded).index(name)}"
        return f"t_{self.names.index(name)}"

    def s(self, name: str) -> str:
        if name in self.guarded:
            return f"g_s_{list(self.guarded).index(name)}"
        return f"s_{self.names.index(name)}"

    def guarded_projections(self) -> str:
        parts = []
        for name, types in self.guarded.items():
            when = _one_of("s_0", types)
            path = self.path(name)
            parts += [f"case when {when} then json_type(j, {path}) end as {self.t(name)}",
                      f"case when {when} then json_extract_string(j, {path}) end "
                      f"as {self.s(name)}"]
        return ",\n    ".join(parts) if parts else "null as g_none"

    @staticmethod
    def path(name: str) -> str:
        return sql_literal(f'$."{name}"')

    def ts(self, name: str) -> str:
        """The field parsed as a naive UTC timestamp (computed once, in the fields CTE)."""
        return f"ts_{self.names.index(name)}"

    def q(self, name: str) -> str:
        return f"json_extract(j, {self.path(name)})::varchar"

    def kinds(self) -> str:
        return "[" + ", ".join([sql_literal("$")] + [self.path(n) for n in self.names]) + "]"

    def strings(self) -> str:
        return "[" + ", ".join(self.path(n) for n in self.scalars) + "]"

    def projections(self) -> str:
        parts = [f"kinds[{i + 2}] as t_{i}" for i in range(len(self.names))]
        parts += [f"strs[{k + 1}] as {self.s(n)}" for k, n in enumerate(self.scalars)]
        return ",\n    ".join(parts)

    def match(self, name: str, pattern: str) -> str:
        """The column holding regexp_matches(field text, pattern): several checks read it, and
        it is computed once (with the timestamps), not once per check."""
        return self.matches.setdefault((name, pattern), f"m_{len(self.matches)}")

    def timestamps(self) -> str:
        """The stamped CTE's columns; call it after every match() call."""
        # The instant as a naive UTC timestamp: its epoch microseconds, which is what ::timestamp
        # gives under TimeZone UTC without the ICU time-zone conversion (half the cost).
        stamps = [f"case when {self.t(n)} = 'VARCHAR' then make_timestamp(epoch_us("
                  f"try_cast({self.s(n)} as timestamptz))) end as {self.ts(n)}"
                  for n in self.datetimes]
        matches = [f"regexp_matches({self.s(n)}, {sql_literal(pattern)}) as {column}"
                   for (n, pattern), column in self.matches.items()]
        return ",\n    ".join(stamps + matches)


def _checked_only(contract: Contract) -> dict[str, list[str]]:
    """Identity fields no column is made of and not every message type has, with their types."""
    found: dict[str, list[str]] = {}
    stored = {r.field for tc in contract.types.values() for r in tc.rules
              if r.column is not None or r.kind != "identity"}
    for name, tc in contract.types.items():
        for rule in tc.rules:
            if rule.kind == "identity" and rule.column is None and rule.field not in stored:
                found.setdefault(rule.field, []).append(name)
    return {f: types for f, types in found.items() if len(types) < len(contract.types)}


def _kind(t: str) -> str:
    """The JSON kind name of a json_type, as ewh.contract.json_kind says it."""
    return (f"(case {t} when 'VARCHAR' then 'string' when 'BOOLEAN' then 'boolean' "
            f"when 'NULL' then 'null' when 'ARRAY' then 'array' when 'OBJECT' then 'object' "
            f"else 'number' end)")


def _show(t: str, q: str) -> str:
    """ewh.contract.show: missing, the JSON text of a string cut to SHOWN_CHARS, or 'a <kind>'."""
    cut = (f"(case when length({q}) <= {SHOWN_CHARS} then {q} "
           f"else left({q}, {SHOWN_CHARS - 3}) || '...' end)")
    return (f"(case when {t} is null or {t} = 'NULL' then 'missing' "
            f"when {t} = 'VARCHAR' then {cut} else 'a ' || {_kind(t)} end)")


def _refuse(reason: str, field: str, expectation_sql: str) -> str:
    tail = f"{sql_literal(f'field `{field}` ')} || {expectation_sql}"
    return f"{{'reason': {sql_literal(reason)}, 'field': {sql_literal(field)}, 'tail': {tail}}}"


def _missing(t: str) -> str:
    return f"({t} is null or {t} = 'NULL')"


# An integer literal, as DuckDB keeps a number it reads as a double (beyond 64 bits).
_INTEGER_LITERAL = "-?[1-9][0-9]*"


def _conditions(rule: FieldRule, f: _Fields) -> list[tuple[str, str]]:
    if rule.kind == "identity_group":
        present = " or ".join(
            f"({f.t(m)} = 'VARCHAR' and {f.match(m, rule.pattern or '')}) "
            f"or {_one_of(f.t(m), (*_NUMBER_TYPES, 'DOUBLE'))}" for m in rule.members)
        members = " or ".join(rule.members)
        return [(f"not coalesce({present}, false)", _refuse(
            "missing_field", rule.field,
            sql_literal(f"is missing, expected at least one of {members}.")))]
    t, s, q = f.t(rule.field), f.s(rule.field), f.q(rule.field)
    wrong = "'is a ' || " + _kind(t)
    if rule.kind == "required_string":
        return [
            (f"{_missing(t)} or ({t} = 'VARCHAR' and {s} = '')",
             _refuse("missing_field", rule.field,
                     sql_literal("is missing, expected a non-empty string."))),
            (f"{t} <> 'VARCHAR'",
             _refuse("wrong_type", rule.field, f"{wrong} || ', expected a string.'")),
        ]
    if rule.kind == "identity":
        allowed = _one_of(t, ("NULL", "VARCHAR", "DOUBLE", *_NUMBER_TYPES))
        return [
            (f"{t} is not null and not {allowed}",
             _refuse("wrong_type", rule.field, f"{wrong} || ', expected a string.'")),
            (f"{t} = 'DOUBLE' and not regexp_full_match({s}, {sql_literal(_INTEGER_LITERAL)})",
             _refuse("invalid_id", rule.field, sql_literal(ID_NUMBER_EXPECTATION))),
        ]
    if rule.kind == "optional_string":
        return [(f"{t} is not null and {t} <> 'NULL' and {t} <> 'VARCHAR'",
                 _refuse("wrong_type", rule.field, f"{wrong} || ', expected a string.'"))]
    if rule.kind == "object":
        return [(f"{t} is not null and {t} <> 'NULL' and {t} <> 'OBJECT'",
                 _refuse("wrong_type", rule.field, f"{wrong} || ', expected a JSON object.'"))]
    if rule.kind == "datetime":
        bad = (f"{t} <> 'VARCHAR' or not regexp_full_match({s}, {sql_literal(rule.pattern or '')}) "
               f"or {f.ts(rule.field)} is null")
        shown = f"(case when {t} = 'VARCHAR' then 'is ' || {_show(t, q)} else {wrong} end)"
        return [(f"not {_missing(t)} and ({bad})", _refuse(
            "invalid_timestamp", rule.field,
            f"{shown} || {sql_literal(', ' + TIMESTAMP_EXPECTATION)}"))]
    raise AssertionError(f"unknown rule kind {rule.kind}")  # pragma: no cover


def _passes(rule: FieldRule, f: _Fields) -> str:
    """A cheap condition under which none of `_conditions(rule)` holds (the converse need not
    hold: a record that fails it only goes through the full checks)."""
    if rule.kind == "identity_group":
        return "(" + " or ".join(
            f"({f.t(m)} = 'VARCHAR' and {f.match(m, rule.pattern or '')})"
            for m in rule.members) + ")"
    t, s = f.t(rule.field), f.s(rule.field)
    if rule.kind == "required_string":
        return f"({t} = 'VARCHAR' and {s} <> '')"
    if rule.kind in ("identity", "optional_string"):
        return f"({t} is null or {t} = 'VARCHAR' or {t} = 'NULL')"
    if rule.kind == "object":
        return f"({t} is null or {t} = 'OBJECT' or {t} = 'NULL')"
    if rule.kind == "datetime":
        return (f"({_missing(t)} or ({f.ts(rule.field)} is not null "
                f"and regexp_full_match({s}, {sql_literal(rule.pattern or '')})))")
    raise AssertionError(f"unknown rule kind {rule.kind}")  # pragma: no cover


def _plainly_valid(contract: Contract, f: _Fields) -> str:
    """A condition under which no check of the CASE fires: one AND of simple tests, where the
    CASE runs about twenty coalesced clauses on every row. Almost every record meets it, so the
    CASE proper only runs on the few others."""
    types_of: dict[str, list[str]] = {}
    for name, tc in contract.types.items():
        times = [f"not coalesce({condition}, false)" for condition, _ in _time_clauses(tc, f)]
        for test in [*(_passes(rule, f) for rule in tc.rules), *times]:
            types_of.setdefault(test, []).append(name)
    tests = [f"n_bytes <= {contract.max_bytes}", "j is not null", "root_kind = 'OBJECT'",
             "t_0 = 'VARCHAR'", _one_of("s_0", contract.message_types)]
    for test, names in types_of.items():
        others = [n for n in contract.types if n not in names]
        tests.append(f"({_one_of('s_0', others)} or {test})" if others else test)
    return "\n        and ".join(tests)


def _column_value(rule: FieldRule, f: _Fields) -> str:
    t, s = f.t(rule.field), f.s(rule.field)
    if rule.kind == "datetime":
        return f.ts(rule.field)
    if rule.kind == "identity":
        # A number is stored as its digits: an accepted double is an integer literal.
        return (f"(case when {t} = 'VARCHAR' then (case when "
                f"{f.match(rule.field, rule.pattern or '')} then {s} end) "
                f"when {_one_of(t, (*_NUMBER_TYPES, 'DOUBLE'))} then {s} end)")
    return f"(case when {t} = 'VARCHAR' then {s} end)"


def _by_type(per_type: dict[str, str], all_types: int) -> str:
    """One expression per distinct SQL, guarded by the message types that use it.

    An expression every type shares needs no guard: only rows of a known type are accepted or
    reach the future check, the one check that reads these columns.
    """
    groups: dict[str, list[str]] = {}
    for name, sql in per_type.items():
        groups.setdefault(sql, []).append(name)
    if len(groups) == 1 and len(per_type) == all_types:
        return f"({next(iter(groups))})"
    whens = " ".join(f"when {_one_of('s_0', names)} then {sql}" for sql, names in groups.items())
    return f"(case {whens} end)" if whens else "null"


def _merged_checks(contract: Contract, f: _Fields) -> str:
    """Every type's checks as WHEN clauses of one CASE; a clause shared by types is written once.

    Each type's clauses keep their order (a clause is only ever placed after the previous
    clause of the same type), so the first failing check is the same as in Python.
    """
    merged: list[tuple[tuple[str, str], list[str]]] = []
    for name, tc in contract.types.items():
        after = -1
        for clause in _type_clauses(tc, f):
            found = next((i for i in range(after + 1, len(merged)) if merged[i][0] == clause),
                         None)
            if found is None:
                merged.insert(after + 1, (clause, []))
                found = after + 1
            merged[found][1].append(name)
            after = found
    whens = []
    for (condition, then), names in merged:
        # Known types only reach these clauses, so a clause every type shares needs no guard.
        guard = "" if len(names) == len(contract.types) else f"{_one_of('s_0', names)} and "
        whens.append(f"when {guard}{condition} then {then}")
    return "\n      ".join(whens)


def _type_clauses(tc: TypeContract, f: _Fields) -> list[tuple[str, str]]:
    # A NULL condition would silently skip a check: every condition is coalesced to false.
    clauses = [(f"coalesce({cond}, false)", then) for rule in tc.rules
               for cond, then in _conditions(rule, f)]
    clauses += [(f"coalesce({cond}, false)", then) for cond, then in _time_clauses(tc, f)]
    return clauses


def _time_clauses(tc: TypeContract, f: _Fields) -> list[tuple[str, str]]:
    """The time range (ewh.contract.rules.TimeRule), in the validator's order: the floor of
    timestamp, sentAt and receivedAt, then receivedAt against the intake time, timestamp,
    the skew-corrected timestamp and sentAt against receivedAt."""
    rule = tc.times
    limit = rule.hours * 3600 * 1_000_000
    ahead = sql_literal(f" h after {rule.received_at}, expected at most {rule.hours} h.")

    def hours(us: str) -> str:
        return f"'is ' || format('{{:.1f}}', {us} / 1000000 / 3600)"

    floor = ("', ' || " + "'expected ' || strftime($timestamp_floor::timestamp, "
             "'%Y-%m-%dT%H:%M:%SZ') || ' or later (EWH_TIMESTAMP_FLOOR).'")
    clauses = [
        (f"{column} < $timestamp_floor::timestamp", _refuse(
            "timestamp_before_floor", field,
            f"'is ' || {_show(f.t(field), f.q(field))} || {floor}"))
        for field, column in ((rule.timestamp, "c_occurred_at"), (rule.sent_at, "c_sent_at"),
                              (rule.received_at, "c_message_received_at"))]
    clauses += [
        (f"received_ahead_us > {limit}", _refuse(
            "future_timestamp", rule.received_at, f"{hours('received_ahead_us')} || " + sql_literal(
                f" h after the time it was taken in, expected at most {rule.hours} h."))),
        (f"occurred_ahead_us > {limit}", _refuse(
            "future_timestamp", rule.timestamp, f"{hours('occurred_ahead_us')} || {ahead}")),
        (f"skew_ahead_us > {limit}", _refuse(
            "future_timestamp", rule.timestamp, f"{hours('skew_ahead_us')} || " + sql_literal(
                f" h after {rule.received_at} once corrected for clock skew, "
                f"expected at most {rule.hours} h."))),
        (f"sent_ahead_us > {limit}", _refuse(
            "future_timestamp", rule.sent_at, f"{hours('sent_ahead_us')} || {ahead}")),
    ]
    return clauses


def _event_columns(contract: Contract, f: _Fields) -> dict[str, str]:
    columns: dict[str, str] = {}
    for column in _EVENT_COLUMNS:
        per_type = {}
        for name, tc in contract.types.items():
            rule = next((r for r in tc.rules if r.column == column), None)
            if rule is not None:
                per_type[name] = _column_value(rule, f)
        columns[column] = _by_type(per_type, len(contract.types))
    return columns


def detail_sql(source: str) -> str:
    """The full detail of a verdict row, given the SQL of its source: the label
    "Record <source> (messageId <id>): " then the tail. Only rejected rows have one."""
    return (f"('Record ' || {source} || coalesce(' (messageId ' || rejected_message_id || ')', '')"
            " || ': ' || detail_tail)")


@cache
def check_query(relation: str, version: str = "v1") -> str:
    """SELECT every record of `relation` with its rejection (or NULLs) and its event columns."""
    lines = (f"select record_number, try(decode(line)) as txt, line as raw, n_bytes, "
             f"coalesce(suspect, true) as suspect from {relation}")
    values = ", ".join(_VALUE_COLUMNS)
    return f"""
select record_number, source, raw_text, reason, field, {detail_sql("source")} as detail, {values},
       needs_python
from (select $source_prefix || ':' || record_number as source, *
      from ({verdict_query(lines, ("record_number",), version)}))
"""


@cache
def verdict_query(lines: str, passthrough: tuple[str, ...] = (), version: str = "v1") -> str:
    """SELECT the verdict (VERDICT_COLUMNS, after `passthrough`) of every row of `lines`.

    `lines` has `txt` (the record as text, NULL when it is not UTF-8), `raw` (the record as read,
    shown as raw_text when txt is NULL), `n_bytes` and `suspect` (may hold a token DuckDB's
    lenient parser accepts, see _STRICT_JSON_VIOLATION). Rows keep their order.
    """
    contract = load_contract(version)
    f = _Fields(contract)
    columns = _event_columns(contract, f)
    plainly_valid, merged_checks = _plainly_valid(contract, f), _merged_checks(contract, f)
    type_list = ", ".join(contract.message_types)
    kind0 = _kind("root_kind")
    kept = "".join(f"{c}, " for c in passthrough)
    return f"""
with parsed as (
  -- CASE, not AND: a CASE branch only runs on the rows that reach it, so oversize records are
  -- never parsed and the slow strict regex only runs on suspect records. json_type fails on
  -- text that is not JSON: a record shaped like an object ({...}) goes straight to it, under
  -- TRY (a failure redoes that vector row by row, which is rare); any other record is first
  -- tested by json_valid, a second parse the usual record does not need.
  select *, case when n_bytes > {contract.max_bytes} then null
                 when suspect and regexp_matches(txt, {_STRICT_JSON_LITERAL}) then null
                 when prefix(txt, '{{') and suffix(txt, '}}') then try(json_type(txt, {f.kinds()}))
                 when json_valid(txt) then json_type(txt, {f.kinds()})
            end as kinds
  from ({lines})
),
extracted as (
  select *, case when kinds is not null then txt end as j,
         case when kinds[1] = 'OBJECT' then json_extract_string(txt, {f.strings()}) end as strs
  from parsed
),
fields as (
  select *, kinds[1] as root_kind,
    {f.projections()}
  from extracted
),
guarded as (
  select *,
    {f.guarded_projections()}
  from fields
),
stamped as (
  select *,
    {f.timestamps()}
  from guarded
),
labelled as (
  select *,
    case when t_{f.names.index('messageId')} = 'VARCHAR' and s_{f.names.index('messageId')} <> ''
         then s_{f.names.index('messageId')} end as rejected_message_id,
    {columns['message_id']} as c_message_id,
    {columns['event_name']} as c_event_name,
    {columns['user_id']} as c_user_id,
    {columns['anonymous_id']} as c_anonymous_id,
    {columns['occurred_at']} as c_occurred_at,
    {columns['sent_at']} as c_sent_at,
    {columns['received_at']} as c_message_received_at,
    coalesce({columns['received_at']}, $received_default::timestamp) as c_received_at
  from stamped
),
timed as (
  -- How far each time is ahead of the one it is checked against, in microseconds. The
  -- skew-corrected timestamp, received - (sent - occurred), is ahead of received by
  -- occurred - sent.
  select *,
    epoch_us(c_received_at) - epoch_us($received_default::timestamp) as received_ahead_us,
    epoch_us(c_occurred_at) - epoch_us(c_received_at) as occurred_ahead_us,
    epoch_us(c_occurred_at) - epoch_us(c_sent_at) as skew_ahead_us,
    epoch_us(c_sent_at) - epoch_us(c_received_at) as sent_ahead_us
  from labelled
),
checked as (
  select *,
    case
      when {plainly_valid} then null
      when n_bytes > {contract.max_bytes} then {{'reason': 'oversize', 'field': null::varchar,
        'tail': 'is ' || n_bytes || ' bytes, expected at most '
                || '{contract.max_bytes} bytes per message.'}}
      when j is null then {{'reason': 'invalid_json', 'field': null::varchar,
        'tail': 'is not valid JSON, expected one JSON object.'}}
      when root_kind <> 'OBJECT' then {{'reason': 'not_an_object', 'field': null::varchar,
        'tail': 'is a JSON ' || {kind0} || ', expected a JSON object.'}}
      when t_0 is distinct from 'VARCHAR' or not {_one_of('s_0', contract.message_types)} then {{
        'reason': 'unknown_message_type', 'field': 'type',
        'tail': 'field `type` is ' || {_show('t_0', f.q('type'))}
                || ', expected one of {type_list}.'}}
      {merged_checks}
    end as rejection
  from timed
)
select {kept}
       -- Text is kept once: as raw_text when rejected, as payload when accepted.
       case when rejection is not null then coalesce(txt, raw::varchar) end as raw_text,
       rejection.reason as reason, rejection.field as field, rejection.tail as detail_tail,
       case when rejection is not null then rejected_message_id end as rejected_message_id,
       c_message_id as message_id, s_0 as message_type, c_event_name as event_name,
       c_user_id as user_id, c_anonymous_id as anonymous_id, c_occurred_at as occurred_at,
       c_sent_at as sent_at, c_received_at as received_at,
       case when rejection is null then txt end as payload,
       -- The records ewh.contract.validator decides (the loader asks it for each): the size
       -- and depth of the message as parsed, where the text does not bound them (see
       -- ewh.contract.validator.validate_text): over the limit (the compact JSON may be
       -- under it), long with an exponent (it may grow), more brackets than the depth limit.
       case when txt is null then false
            when n_bytes > {contract.max_bytes} then true
            when n_bytes > {contract.max_bytes // GROWTH}
                 and regexp_matches(txt, '[0-9][eE]') then true
            else strlen(txt) - strlen(replace(replace(txt, '{{', ''), '[', ''))
                 > {contract.max_depth}
       end as needs_python
from checked
"""
