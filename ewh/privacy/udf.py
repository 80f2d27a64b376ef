"""The policy as DuckDB functions for the loader, vectorised over Arrow arrays:
`ewh_protect(payload)`, `ewh_protect_rejected(raw_text)` and
`ewh_suppressed(user_id, anonymous_id)`; and `ewh_protect_payload(payload)`, a SQL macro that
settles the common messages in SQL and calls `ewh_protect` for the rest.

Most events carry nothing personal but context.ip. Protector.payload settles those by text
alone (no marker of a personal field; every "ip" a plain IPv4 address, truncated to its /24),
so the macro applies the same textual rules in SQL, and only where they are sure: one "ip" key,
ASCII digits. Anything else (a marker, two "ip" keys, IPv6, odd spacing or digits) goes to the
Python policy exactly as before. At 1M events the UDF was about a fifth of the load's CPU.
"""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa

from ewh.common.sql_text import sql_literal
from ewh.privacy.policy import PARSE_MARKERS, Protector

# Protector._truncate_ips's `"ip": "<text>"` where the text is an IPv4 address written the
# way the policy writes it back (each octet 0-255 without leading zeros, ASCII digits): then
# the truncation only replaces the last octet. RE2's \s and \d are the ASCII subsets of
# Python's, so a match here is a match there; anything else goes to the Python policy.
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)"
_IPV4_FIELD = r'"ip"\s*:\s*"' + r"\.".join([_OCTET] * 4) + '"'
_TRUNCATED = r'"ip":"\1.\2.\3.0"'
# Protector.payload's markers and "ip", found in one case-insensitive pass (RE2 folds at least
# the case Python's lower() does for these ASCII words).
_MARKER_KEYS = "(?i)(" + "|".join((*PARSE_MARKERS, '"ip"')) + ")"


def register_privacy_functions(con: duckdb.DuckDBPyConnection, protector: Protector) -> None:
    def protect(texts: pa.Array) -> pa.Array:
        return pa.array([protector.payload(t) for t in texts.to_pylist()], pa.string())

    def protect_rejected(texts: pa.Array) -> pa.Array:
        return pa.array([protector.text(t) for t in texts.to_pylist()], pa.string())

    def suppressed(user_ids: pa.Array, anonymous_ids: pa.Array) -> pa.Array:
        check = protector.suppressed.contains
        return pa.array([check(u) or check(a) for u, a in
                         zip(user_ids.to_pylist(), anonymous_ids.to_pylist(), strict=True)],
                        pa.bool_())

    for name in ("ewh_protect", "ewh_protect_rejected", "ewh_suppressed"):
        with contextlib.suppress(duckdb.InvalidInputException):
            con.remove_function(name)
    con.create_function("ewh_protect", protect, [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR"), type="arrow", null_handling="special",
                        side_effects=False)
    con.create_function("ewh_protect_rejected", protect_rejected, [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR"), type="arrow", null_handling="special",
                        side_effects=False)
    con.create_function("ewh_suppressed", suppressed,
                        [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("BOOLEAN"), type="arrow", null_handling="special",
                        side_effects=False)
    con.execute(protect_payload_macro(protector))


def protect_payload_macro(protector: Protector) -> str:
    """`ewh_protect_payload(p)`: Protector.payload's text-only cases in SQL, else ewh_protect."""
    # EWH_PERSONAL_TRAITS names are markers too (plain text, anywhere)
    traits = [m for m in protector.markers if m not in PARSE_MARKERS]
    trait_found = " or ".join(f"contains(lower(p), {sql_literal(t)})" for t in traits)
    settled = f"""
        case regexp_extract_all(p, {sql_literal(_MARKER_KEYS)})
            when [] then p
            when ['"ip"'] then
                case when regexp_matches(p, {sql_literal(_IPV4_FIELD)})
                    then regexp_replace(p, {sql_literal(_IPV4_FIELD)}, {sql_literal(_TRUNCATED)})
                    else ewh_protect(p)
                end
            else ewh_protect(p)
        end"""
    if trait_found:
        settled = f"case when {trait_found} then ewh_protect(p) else {settled} end"
    return f"create or replace temp macro ewh_protect_payload(p) as {settled}"
