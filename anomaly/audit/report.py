"""`report.html`: one self-contained page (thumbnails embedded as base64, inline CSS, JS and SVG) that
opens from disk with no server: counts, the score histogram with the threshold, and every row sorted
by score with its overlay thumbnail, filterable by verdict and by path."""

from __future__ import annotations

import base64
import datetime
import html
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.audit.inputs import artifact_name, readable
from anomaly.audit.results import VERDICTS

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}.meta{color:#555;margin-bottom:1em}
.filters button{margin-right:.4em;padding:.3em .8em;border:1px solid #888;background:#fff;border-radius:4px;cursor:pointer}
.filters button.active{background:#333;color:#fff}
table{border-collapse:collapse;margin-top:1em;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}
td.num{text-align:right;font-variant-numeric:tabular-nums}img.thumb{max-width:192px;max-height:192px;display:block}
tr[data-verdict=anomalous] td.verdict{color:#b00;font-weight:bold}tr[data-verdict=error] td.verdict{color:#a60}
td.path{word-break:break-all;max-width:40em}.err{color:#a60}tr.hidden{display:none}
"""
_JS = """
const rows=[...document.querySelectorAll('#results tbody tr')];let verdict='all';
function apply(){const q=document.getElementById('search').value.toLowerCase();
 rows.forEach(r=>{const ok=(verdict==='all'||r.dataset.verdict===verdict)&&r.dataset.path.toLowerCase().includes(q);
 r.classList.toggle('hidden',!ok);});
 document.getElementById('shown').textContent=rows.filter(r=>!r.classList.contains('hidden')).length;}
document.querySelectorAll('.filters button').forEach(b=>b.addEventListener('click',()=>{verdict=b.dataset.filter;
 document.querySelectorAll('.filters button').forEach(x=>x.classList.toggle('active',x===b));apply();}));
document.getElementById('search').addEventListener('input',apply);apply();
"""


def histogram_svg(scores: list[float], threshold: float | None, bins: int = 30, width: int = 640,
                  height: int = 160) -> str:
    """Inline SVG histogram of image scores, bars at or above `threshold` in red, a dashed threshold line."""
    if not scores:
        return "<p>No scored images.</p>"
    values = np.asarray(scores, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    pad, plot_h = 30, height - 40
    bar_w = (width - 2 * pad) / bins
    x_of = lambda v: pad + (v - lo) / (hi - lo) * (width - 2 * pad)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="histogram" width="{width}" height="{height}" '
             f'role="img" aria-label="score histogram">']
    for i, count in enumerate(counts):
        h = plot_h * count / max(counts.max(), 1)
        fill = "#c33" if threshold is not None and edges[i] >= threshold else "#69c"
        parts.append(f'<rect x="{pad + i * bar_w:.1f}" y="{10 + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{h:.1f}" fill="{fill}"><title>{edges[i]:.4g} to {edges[i + 1]:.4g}: {count}</title></rect>')
    parts.append(f'<line x1="{pad}" y1="{10 + plot_h}" x2="{width - pad}" y2="{10 + plot_h}" stroke="#333"/>')
    parts.append(f'<text x="{pad}" y="{height - 12}" font-size="11">{lo:.4g}</text>'
                 f'<text x="{width - pad}" y="{height - 12}" font-size="11" text-anchor="end">{hi:.4g}</text>')
    if threshold is not None:
        x = x_of(threshold)
        parts.append(f'<line x1="{x:.1f}" y1="5" x2="{x:.1f}" y2="{10 + plot_h}" stroke="#000" stroke-dasharray="4 3"/>'
                     f'<text x="{x + 4:.1f}" y="14" font-size="11">threshold {threshold:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _thumb(out: Path, row: dict[str, Any]) -> str:
    path = out / "thumbs" / f"{artifact_name(row['path'])}.jpg"
    if row.get("verdict") == "error" or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="thumb" alt="overlay" src="data:image/jpeg;base64,{data}">'


def _escape(text: str) -> str:
    """HTML-escaped and valid UTF-8: a file name's undecodable bytes read ``\\xNN`` (`readable`)."""
    return html.escape(readable(text))


def _cell(value: Any, fmt: str = "{}") -> str:
    return "" if value is None or value == "" else _escape(fmt.format(value))


def _row(out: Path, rank: int, row: dict[str, Any]) -> str:
    e = _escape
    size = f"{row['width']}×{row['height']}" if row.get("width") else ""
    link = f'<a href="{e(row["overlay"])}">overlay</a>' if row.get("overlay") else ""
    return (f'<tr data-verdict="{e(row["verdict"])}" data-path="{e(row["path"])}">'
            f'<td class="num">{rank}</td><td>{_thumb(out, row)}</td><td class="path">{e(row["path"])}</td>'
            f'<td class="num">{size}</td><td class="num score">{_cell(row.get("score"), "{:.5g}")}</td>'
            f'<td class="num">{_cell(row.get("normalised_score"), "{:.3f}")}</td>'
            f'<td class="verdict">{e(row["verdict"])}</td><td class="num">{_cell(row.get("regions"))}</td>'
            f'<td class="num">{_cell(row.get("largest_region_area"))}</td>'
            f'<td>{link}</td><td class="err">{_cell(row.get("error"))}</td></tr>')


def render_report(out: Path, rows: list[dict[str, Any]], threshold: float | None, info: dict[str, Any]) -> str:
    """The report's HTML text; rows sorted by score, highest first, errors last."""
    ordered = sorted(rows, key=lambda r: (r.get("score") is None, -(r.get("score") or 0.0), r["path"]))
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    e = _escape
    model = e(str(info.get("name") or info.get("uri") or "")) + (f" v{e(str(info['version']))}" if info.get("version") else "")
    buttons = "".join(f'<button data-filter="{v}">{v} ({counts[v]})</button>' for v in VERDICTS)
    header = "".join(f"<th>{h}</th>" for h in ("#", "overlay", "path", "size", "score", "normalised", "verdict",
                                                 "regions", "largest region", "file", "error"))
    body = "\n".join(_row(out, i + 1, r) for i, r in enumerate(ordered))
    scores = [r["score"] for r in rows if r.get("score") is not None]
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Anomaly audit: {e(str(out))}</title><style>{_CSS}</style></head>
<body><h1>Anomaly audit</h1>
<div class="meta">model <b>{model}</b> · threshold <b id="threshold">{_cell(threshold, "{:.5g}")}</b> ·
<span id="counts">{len(rows)} images, {counts['anomalous']} anomalous, {counts['normal']} normal, {counts['error']} errors</span>
· {e(stamp)}</div>
{histogram_svg(scores, threshold)}
<div class="filters"><button data-filter="all" class="active">all ({len(rows)})</button>{buttons}
<input id="search" type="search" placeholder="filter by path"> showing <span id="shown">{len(rows)}</span></div>
<table id="results"><thead><tr>{header}</tr></thead><tbody>
{body}
</tbody></table><script>{_JS}</script></body></html>
"""


def write_report(out: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write `out/report.html` from the results rows; returns its path."""
    out = Path(out)
    path = out / "report.html"
    tmp = path.with_name("report.html.tmp")
    tmp.write_text(render_report(out, rows, meta.get("threshold"), info), encoding="utf-8")
    tmp.replace(path)
    return path
