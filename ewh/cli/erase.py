"""`ewh erase USER_ID`: erase a person everywhere, for good (ewh.privacy.erasure)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("erase", "erase a user (by userId) from every layer, file and copy, with a receipt")
def _erase(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("user_id", help="the userId to erase")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    parser.add_argument("--dagster-home", type=Path, default=None,
                        help="Dagster's storage to purge (default: $DAGSTER_HOME)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings
    from ewh.privacy.erasure import UnknownUser, erase_user

    settings = get_settings()
    warehouse = args.warehouse or settings.warehouse
    if not warehouse.exists():
        raise OperationalError(f"no warehouse at {warehouse}")
    try:
        result = erase_user(args.user_id, settings, warehouse=warehouse,
                            dagster_home=args.dagster_home)
    except UnknownUser as exc:
        raise OperationalError(str(exc)) from exc
    receipt = result.receipt
    ids = receipt["ids_erased"]
    print(f"erased userId {args.user_id!r}: {ids['user_ids']} userIds and "
          f"{ids['anonymous_ids']} anonymous ids, {receipt['data_keys_destroyed']} data keys "
          "destroyed, ids added to the suppression list")
    for where, tables in receipt["tables"].items():
        for table, rows in sorted(tables.items()):
            print(f"  {where} {table}: {rows} rows")
    files = receipt["files"]
    print(f"  landing files rewritten: {len(files['landing_rewritten'])}, shredded: "
          f"{len(files['landing_shredded'])}; export files: {len(files['exports'])}; "
          f"Dagster records: {sum(files['dagster'].values()) if files['dagster'] else 0}")
    gx = files["gx"]
    print(f"  GX validation results rewritten: {gx['results_rewritten']}, removed: "
          f"{gx['results_removed']}; Data Docs pages rebuilt: {gx['pages_rebuilt']}, "
          f"removed: {gx['pages_removed']}")
    if "pages_rebuild_error" in gx:
        print(f"  Data Docs could not be rebuilt ({gx['pages_rebuild_error']}): the pages "
              "naming them were removed (their scrubbed results are kept)")
    verification = receipt["verification"]
    print(f"verification scan: {'clean' if verification['clean'] else 'TRACES FOUND'} "
          f"({verification['files_scanned']} files)")
    if not verification["clean"]:
        print(json.dumps({"table_hits": verification["table_hits"],
                          "file_hits": verification["file_hits"]}, indent=2))
    print(f"receipt: {result.receipt_path}")
    return 0 if verification["clean"] else 1
