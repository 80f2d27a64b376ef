"""The analyst report: one self-contained HTML file (inline SVG charts, no script, no CDN)
built from the serving copy and the latest data-quality results.

- `data.py` reads what the report shows;
- `charts.py` draws each chart with Altair (Vega-Lite) and renders it to SVG offline with
  vl-convert;
- `page.py` lays the page out and writes it.
"""
