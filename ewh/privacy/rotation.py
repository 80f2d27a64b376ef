"""Rotate the pseudonym (HMAC) key: re-key what can be re-keyed, keep the old key for the rest.

Procedure (docs/privacy.md#rotating-the-hmac-key):
1. add the current key to EWH_RETIRED_PSEUDONYM_KEYS and set the new one as
   EWH_PSEUDONYM_KEY (or replace the key file);
2. run `ewh rekey` with the warehouse idle: every data key file is renamed under the new key,
   and every email pseudonym in raw is recomputed from the encrypted address;
3. run a full refresh (`dagster job execute -j refresh_warehouse` with full_refresh), so
   staging and everything after it carry the new pseudonyms.
A retired key is only ever used to recognise suppression hashes made with it (erased ids
cannot be re-hashed: nothing keeps them) and to find data keys during step 2; pseudonyms
kept only as a hash (phone, listed traits) stay under the key they were made with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ewh.contract import json_text
from ewh.privacy.keys import DataKeys, PrivacyKeys
from ewh.privacy.policy import FIELD_HOLDERS, get_path


@dataclass(frozen=True)
class RekeyResult:
    data_keys_renamed: int
    emails_rekeyed: int


def rekey(warehouse: Path, keys: PrivacyKeys) -> RekeyResult:
    """Move data keys and email pseudonyms from the retired keys to the current one."""
    new = DataKeys(keys)
    olds = [DataKeys(PrivacyKeys(keys.key_store, k)) for k in keys.retired]
    renamed = 0
    emails = 0
    with duckdb.connect(str(warehouse)) as con:
        subjects = [s for (s,) in con.execute(
            "select distinct user_id from raw.events where user_id is not null union "
            "select distinct anonymous_id from raw.events where anonymous_id is not null"
        ).fetchall()]
        for subject in subjects:
            target = new.path_for(subject)
            if target.exists():
                continue
            for old in olds:
                source = old.path_for(subject)
                if source.exists():
                    source.rename(target)
                    renamed += 1
                    break
        con.execute("begin transaction")
        rows = con.execute("select rowid, coalesce(user_id, anonymous_id), payload from "
                           "raw.events where payload like '%email_encrypted%'").fetchall()
        for rowid, subject, payload in rows:
            message = json_text.loads(payload)
            changed = False
            for path in FIELD_HOLDERS:
                holder = get_path(message, path)
                if isinstance(holder, dict) and isinstance(holder.get("email_encrypted"), str):
                    email = new.decrypt(subject, holder["email_encrypted"])
                    if email is not None:
                        holder["email_hmac"] = keys.pseudonym("email", email.strip().lower())
                        changed = True
            if changed:
                con.execute("update raw.events set payload = ? where rowid = ?",
                            [json_text.dumps(message).decode(), rowid])
                emails += 1
        con.execute("commit")
    return RekeyResult(renamed, emails)
