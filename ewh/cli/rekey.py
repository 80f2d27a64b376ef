"""`ewh rekey`: after rotating the pseudonym key, re-key data keys and email pseudonyms."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("rekey", "after a pseudonym-key rotation: move data keys and email pseudonyms to "
                  "the new key (docs/privacy.md)")
def _rekey(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings
    from ewh.privacy.keys import PrivacyKeys
    from ewh.privacy.rotation import rekey

    settings = get_settings()
    keys = PrivacyKeys.from_settings(settings)
    if not keys.retired:
        raise OperationalError("no retired key: list the previous key in "
                               "EWH_RETIRED_PSEUDONYM_KEYS first (docs/privacy.md)")
    warehouse = args.warehouse or settings.warehouse
    if not warehouse.exists():
        raise OperationalError(f"no warehouse at {warehouse}")
    result = rekey(warehouse, keys)
    print(f"re-keyed {result.data_keys_renamed} data keys and {result.emails_rekeyed} email "
          "pseudonyms; now run a full refresh so staging and later layers follow")
    return 0
