"""`ewh erase USER_ID`: delete a user from every layer of the warehouse."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("erase", "erase a user (by userId) from raw and every derived table")
def _erase(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("user_id", help="the userId to erase")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings
    from ewh.privacy.erasure import UnknownUser, erase_user

    settings = get_settings()
    warehouse = args.warehouse or settings.warehouse
    if not warehouse.exists():
        raise OperationalError(f"no warehouse at {warehouse}")
    try:
        result = erase_user(warehouse, args.user_id, settings.models_dir)
    except UnknownUser as exc:
        raise OperationalError(str(exc)) from exc
    print(f"erased userId {result.user_id!r} and {len(result.anonymous_ids)} linked anonymous "
          f"ids: {result.raw_events} raw events, {result.rejected_rows} rejected records")
    for table, rows in sorted(result.derived_rows.items()):
        print(f"  {table}: {rows} rows")
    print("the serving copy and exports drop the user at the next refresh")
    return 0
