"""Great Expectations Data Docs that open offline.

GX's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs
(and its logo from a web bucket): offline the pages are unstyled. `make setup` installs the
same packages, at the versions the templates name, from npm into
`expectations/docs_assets/node_modules` (package.json beside it). After every Data Docs build
`bundle_offline` copies the files the pages use into the site's `static/vendor/` and rewrites
each page to load them by relative path; the logo becomes the site's own copy.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ewh.common.settings import PROJECT_ROOT

FILTER_CONTROL = "extensions/filter-control/bootstrap-table-filter-control"
NODE_MODULES = PROJECT_ROOT / "expectations" / "docs_assets" / "node_modules"
VENDOR = "static/vendor"

# CDN URL (as the templates write it) -> (package folder to copy, file inside it).
ASSETS: dict[str, tuple[str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        ("bootstrap/dist", "css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        ("bootstrap/dist", "js/bootstrap.min.js"),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery/dist", "jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        ("popper.js/dist", "umd/popper.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        ("bootstrap-table/dist", "bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        ("bootstrap-table/dist", "bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js":
        ("bootstrap-table/dist", f"{FILTER_CONTROL}.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css":
        ("bootstrap-table/dist", f"{FILTER_CONTROL}.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css":
        ("bootstrap-table/dist", f"{FILTER_CONTROL}.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css":
        ("bootstrap-datepicker/dist", "css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js":
        ("bootstrap-datepicker/dist", "js/bootstrap-datepicker.min.js"),
    # all.min.css reads ../webfonts/: the package's css/ and webfonts/ are copied together.
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        ("@fortawesome/fontawesome-free", "css/all.min.css"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css":
        ("@forevolve/bootstrap-dark/dist", "css/bootstrap-prefers-dark.css"),
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega/build", "vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite/build", "vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed/build", "vega-embed.min.js"),
}
# Whole folders a copied file reads relatively.
EXTRA_DIRS = {"@fortawesome/fontawesome-free": ("webfonts",)}
LOGO = re.compile(r'https://great-expectations-web-assets\.s3\.[^"]*/logo-long\.png[^"]*')
FAVICON = re.compile(r'href="(?:\.\./)*static/images/favicon\.ico"')
REMOTE = re.compile(r'(?:src|href)="(https?://[^"]+)"')


class MissingDocsAssets(FileNotFoundError):
    pass


def _vendor_path(package: str, file: str) -> str:
    return f"{VENDOR}/{package.split('/')[0].lstrip('@')}/{package}/{file}".replace("//", "/")


def copy_assets(site: Path, node_modules: Path = NODE_MODULES) -> None:
    """Copy every asset the pages load into `site/static/vendor/` (skipping what is there)."""
    for package, file in ASSETS.values():
        source = node_modules / package / file
        if not source.exists():
            raise MissingDocsAssets(
                f"{source} is missing: run `make setup` (npm install in expectations/docs_assets)")
        target = site / _vendor_path(package, file)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        for folder in EXTRA_DIRS.get(package, ()):
            extra = site / _vendor_path(package, folder)
            if not extra.exists():
                shutil.copytree(node_modules / package / folder, extra)


def rewrite_page(page: Path, site: Path) -> None:
    """Point the page's CDN links at the site's copies, by a path relative to the page."""
    up = "../" * (len(page.relative_to(site).parts) - 1)
    text = page.read_text(encoding="utf-8")
    for url, (package, file) in ASSETS.items():
        text = text.replace(f'"{url}"', f'"{up}{_vendor_path(package, file)}"')
    text = LOGO.sub(f"{up}static/images/logo-long-vector.svg", text)
    # GX writes the favicon one level up whatever the page's depth (validation pages are 4).
    text = FAVICON.sub(f'href="{up}static/images/favicon.ico"', text)
    page.write_text(text, encoding="utf-8")


def remote_loads(page: Path) -> list[str]:
    """The page's remaining remote src/stylesheet URLs (anchors to web pages do not load)."""
    text = page.read_text(encoding="utf-8")
    return [m.group(1) for m in REMOTE.finditer(text)
            if "src=" in m.group(0) or m.group(1).endswith((".css", ".js"))]


def bundle_offline(site: Path, node_modules: Path = NODE_MODULES) -> None:
    """Make every page of the Data Docs site at `site` load only local files."""
    if not site.exists():
        return
    copy_assets(site, node_modules)
    for page in site.rglob("*.html"):
        rewrite_page(page, site)
