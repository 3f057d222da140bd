"""The page around the sections, and the small pieces every section uses: tables, numbers, the
note a section shows when its data is missing, and the page's CSS (inline: nothing is fetched).
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime

import numpy as np

from kit.reporting.charts import fmt


def page(title: str, header: str, sections: list[tuple[str, str, str]], *, where: str) -> str:
    """The whole HTML document: a header, a bar of links, one <section> per (key, title, body)."""
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name, _ in sections)
    body = "".join(
        f'<section id="{key}" data-section="{key}"><h2>{html.escape(name)}</h2>{content}</section>'
        for key, name, content in sections
    )
    where = html.escape(where)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="kit"><title>{html.escape(title)}</title><style>{CSS}</style></head>'
        f"<body><main>{header}<nav>{nav}</nav>{body}"
        f"<footer>Written by kit from the files in {where} on {datetime.now():%Y-%m-%d %H:%M}. "
        f"Write it again with <code>kit report {where}</code>.</footer></main></body></html>\n"
    )


def header(title: str, subtitle: str, cards: list[tuple[str, str, str]]) -> str:
    """The page's title and a row of cards: (what, value, a smaller line under it)."""
    items = "".join(
        f'<div class="card"><div class="what">{html.escape(k)}</div>'
        f'<div class="value">{html.escape(v)}</div><div class="more">{html.escape(str(m))}</div></div>'
        for k, v, m in cards
    )
    return (
        f'<header><h1>{html.escape(title)}</h1><p class="sub">{html.escape(subtitle)}</p>'
        f'<div class="cards">{items}</div></header>'
    )


def direction_words(direction: str) -> str:
    return {"maximize": "higher is better", "minimize": "lower is better"}.get(direction, "")


def table(
    head: list[str], rows: list, *, raw: bool = False, show_head: bool = True, classes: str = "", highlight=()
) -> str:
    """A table; cells are escaped unless `raw` (the caller escaped them); rows in `highlight` marked."""

    def cell(v):
        text = value(v)
        return text if raw else html.escape(text)

    thead = ""
    if show_head:
        thead = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>"
    marked = ' class="this"'
    body = "".join(
        f"<tr{marked if i in highlight else ''}>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f'<div class="scroll"><table class="{classes}">{thead}<tbody>{body}</tbody></table></div>'


def facts(rows: list[tuple]) -> str:
    """A two-column table of (what, value) without a head."""
    return table(["", ""], rows, show_head=False, classes="facts")


def value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return fmt(v) if math.isfinite(v) else "–"
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return str(v)


def score(v) -> str:
    """A CV score as the command prints it (5 decimals; a large rmse with a thousands separator)."""
    if v is None or isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return "–"
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.5f}"


def number(v: float) -> str:
    """A value in a table: all its digits when large (a price), four significant ones otherwise."""
    if not math.isfinite(v):
        return "–"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def seconds(v) -> str:
    if v is None or not isinstance(v, int | float):
        return "–"
    if v >= 3600:
        return f"{v / 3600:.1f} h"
    if v >= 120:
        return f"{v / 60:.1f} min"
    return f"{v:.1f} s"


def missing(text: str, *, raw: bool = False) -> str:
    """What a section shows instead of its content, and why."""
    return f'<p class="missing">{text if raw else html.escape(text)}</p>'


def file_list(names: list[str]) -> str:
    return (
        '<h3>Files</h3><p class="files">' + " ".join(f"<code>{html.escape(n)}</code>" for n in names) + "</p>"
    )


def sample(n: int, k: int, seed: int = 0) -> np.ndarray:
    """At most k of n row indices, seeded, in order."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def thin(x, y, k: int):
    """At most k points of a line, evenly spaced along it, its ends kept."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) <= k:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, k).round().astype(int))
    return x[idx], y[idx]


CSS = """
:root{--ink:#1f2328;--quiet:#5b636d;--line:#d8dde3;--soft:#f5f7f9;--accent:#4e79a7}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:#fff}
main{max-width:1180px;margin:0 auto;padding:20px 24px 40px}
header h1{font-size:24px;margin:0}
.sub{color:var(--quiet);margin:2px 0 14px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:150px;background:var(--soft)}
.card .what{font-size:12px;color:var(--quiet)}
.card .value{font-size:19px;font-weight:600;font-variant-numeric:tabular-nums}
.card .more{font-size:12px;color:var(--quiet);min-height:1em}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);margin:16px 0 0;padding:8px 0;
display:flex;flex-wrap:wrap;gap:4px 16px;z-index:1}
nav a{color:var(--accent);text-decoration:none;font-size:13px}
section{padding-top:10px;border-bottom:1px solid var(--line);padding-bottom:14px}
h2{font-size:18px;margin:14px 0 8px}
h3{font-size:15px;margin:16px 0 6px}
h4{font-size:14px;margin:0 0 4px;font-weight:600}
h4.next{margin-top:18px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:18px 22px}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:18px 28px;align-items:start}
.two h3:first-child{margin-top:0}
figure{margin:0}
figure svg{width:100%;height:auto;display:block}
figcaption,.caption{font-size:12px;color:var(--quiet);margin-top:2px}
.legend{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12px;margin-top:2px}
.key i{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:5px;border-radius:2px}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#444}
svg .label{font-size:12px;fill:#222}
svg .grid{stroke:#eceff2;stroke-width:1}
svg .frame{fill:none;stroke:#c5ccd3}
svg .axis{stroke:#888}
svg .ref{stroke:#999;stroke-dasharray:4 4;fill:none}
svg .series{fill:none;stroke-width:1.8;stroke-linejoin:round}
svg .marker{fill:#fff;stroke-width:2}
svg .dots{fill:none;stroke-width:4;stroke-linecap:round;stroke-opacity:.45}
svg .area{fill-opacity:.22;stroke-width:1.4}
svg .whisker{stroke:#333;stroke-width:1.2;fill:none}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:var(--soft);font-weight:600}
table.facts td:first-child{color:var(--quiet);white-space:nowrap}
table.facts td{word-break:break-word}
tr.this td{background:#fff7e0}
table.matrix td{text-align:center;min-width:64px;font-weight:600}
table.matrix td small{display:block;font-weight:400;font-size:11px;opacity:.85}
table.matrix td.total{background:none;color:var(--quiet);font-weight:400}
table.matrix th.corner{font-weight:400;color:var(--quiet);font-size:12px}
ul.notes{margin:4px 0;padding-left:20px}
.quiet{color:var(--quiet)}
.missing{color:#8a5300;background:#fff7e0;border:1px solid #f0d9a0;border-radius:6px;padding:8px 12px}
.gain{font-size:15px}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:10px 12px;overflow-x:auto;
font-size:12px;max-height:420px}
code{font-size:12px;background:var(--soft);padding:1px 4px;border-radius:3px}
.files code{display:inline-block;margin:2px 0}
img.plot{max-width:100%}
footer{color:var(--quiet);font-size:12px;margin-top:18px}
"""
