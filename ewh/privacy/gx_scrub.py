"""Erasure in the Great Expectations project (its folder: EWH_GX_PROJECT_DIR, else
expectations/).

A failed expectation keeps a few sample values (result_format SUMMARY): the offending values
(`partial_unexpected_list`, `partial_unexpected_counts`) and the suite's key column of the
offending rows (`partial_unexpected_index_list`, e.g. `user_key`). GX stores them in its
validation results (gx/uncommitted/validations/**.json) and Data Docs renders them in each
run's page (gx/uncommitted/data_docs/<site>/validations/**.html). Erasure:
- rewrites each stored result that names the person, every string holding one of their ids
  replaced by `[erased]` (lists keep their length: counts and the others' samples stay);
- renders the pages of those results again from the rewritten JSON with GX's own
  `build_data_docs` (offline); a page that still names them (its result is gone, or the
  build failed: the receipt says why) is removed, as is any other Data Docs file that does.

Their ids are looked for in every spelling a JSON or HTML file may give them (`\\u00f6`,
`&amp;`), and also their email's digests (keyed HMAC, SHA-256), which a check on an email
hash column would sample.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ewh.common.settings import PROJECT_ROOT, Settings
from ewh.privacy.files import replace_contents
from ewh.privacy.scan import files_in, needle_pattern
from ewh.privacy.scrub import shred

ERASED = "[erased]"
DOCS_SITE = "local_site"  # ewh.quality.project.DOCS_SITE (not imported: that loads GX)


def gx_folder(settings: Settings) -> Path:
    """The GX project's gx/ folder (ewh.quality.validate.gx_project_dir, without GX)."""
    return (settings.gx_project_dir or PROJECT_ROOT / "expectations") / "gx"


def gx_data_files(folder: Path) -> list[Path]:
    """Every file of the gx/ `folder` but each Data Docs site's static/ assets: GX's images
    and fonts and the vendored scripts, copied from packages, never data (in their binary
    bytes a short id like `u1` turns up by chance: they are neither scanned nor touched)."""
    docs = folder / "uncommitted" / "data_docs"
    return [p for p in files_in(folder)
            if not (p.is_relative_to(docs) and p.relative_to(docs).parts[1:2] == ("static",))]


def spellings(values: Iterable[str]) -> set[str]:
    """Each value as is, JSON-escaped (ASCII only), and either of those HTML-escaped."""
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        for text in (value, json.dumps(value)[1:-1]):
            found |= {text, html.escape(text)}
    return found


def _scrub_value(value: Any, pattern: re.Pattern[str]) -> Any:
    """`value` (parsed JSON) with every match in its strings and keys replaced."""
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [_scrub_value(v, pattern) for v in value]
    if isinstance(value, dict):
        return {pattern.sub(ERASED, k): _scrub_value(v, pattern) for k, v in value.items()}
    return value


def scrub_gx(folder: Path, needles: Iterable[str]) -> dict[str, Any]:
    """Scrub the person from the GX project's gx/ `folder` (see the module doc): the counts
    of result files rewritten or removed and of Data Docs pages rebuilt or removed."""
    wanted = sorted({n for n in needles if n})
    report: dict[str, Any] = {"results_rewritten": 0, "results_removed": 0,
                              "pages_rebuilt": 0, "pages_removed": 0}
    found = needle_pattern(spellings(wanted))  # in the bytes, any spelling
    plain = needle_pattern(wanted)  # in parsed JSON strings
    if found is None or plain is None or not folder.exists():
        return report
    text = re.compile(plain.pattern.decode(), re.IGNORECASE)
    results = folder / "uncommitted" / "validations"
    docs = folder / "uncommitted" / "data_docs"
    site = docs / DOCS_SITE

    def docs_files() -> list[Path]:
        return [p for p in gx_data_files(folder) if p.is_relative_to(docs)]

    def holds(path: Path) -> bool:
        return path.is_file() and bool(found.search(path.read_bytes()))

    rewritten: list[Path] = []
    for path in files_in(results):
        if not holds(path):
            continue
        try:
            document = json.loads(path.read_bytes())
        except ValueError:
            shred(path)
            report["results_removed"] += 1
            continue
        scrubbed = _scrub_value(document, text)
        replace_contents(path, json.dumps(scrubbed, indent=2).encode())
        rewritten.append(path)
        if holds(path):  # a spelling parsing cannot reach (a number, say): no copy is kept
            shred(path)
            report["results_removed"] += 1
        else:
            report["results_rewritten"] += 1

    pages = [p for p in docs_files() if p.is_relative_to(site) and holds(p)]
    rebuild = [r for r in rewritten if r.exists() and _page_of(r, results, site) in pages]
    if rebuild:
        try:
            from ewh.quality.project import rebuild_result_pages

            rebuild_result_pages(rebuild, folder.parent)
        except Exception as error:  # whatever failed, the pages are removed instead (below)
            report["pages_rebuild_error"] = f"{type(error).__name__}: {error}"
    for page in pages:
        if holds(page):
            shred(page)
            report["pages_removed"] += 1
        else:
            report["pages_rebuilt"] += 1
    for path in docs_files():  # the index, another site, anything else Data Docs wrote
        if holds(path):
            shred(path)
            report["pages_removed"] += 1
    return report


def _page_of(result: Path, results: Path, site: Path) -> Path:
    """The Data Docs page of a stored result: the same relative path, under validations/."""
    return site / "validations" / result.relative_to(results).with_suffix(".html")
