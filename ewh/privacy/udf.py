"""The policy as DuckDB functions for the loader, vectorised over Arrow arrays:
`ewh_protect(payload)`, `ewh_protect_rejected(raw_text)` and
`ewh_suppressed(user_id, anonymous_id)`."""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa

from ewh.privacy.policy import Protector


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
