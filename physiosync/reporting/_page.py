"""Building blocks of an HTML page: its style sheet, escaping, number formats, tables.

:mod:`physiosync.reporting.html` lays out the report's page with these; nothing here
reads a report.
"""

from __future__ import annotations

import html

from ..evaluation.statistics import real_or_none as _real

__all__ = ["CSS", "esc", "fmt", "fmt_p", "mean_std", "skip", "table", "section", "num"]

#: The page's inline style sheet.
CSS = """\
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.55em;margin-bottom:.3em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.15em}
h3{font-size:1.05em;margin-bottom:.3em}
.meta{color:#555;margin-top:0}
.warning{border:3px solid #c00;background:#fdeaea;color:#800;padding:.8em 1em;
 font-weight:bold;margin:1em 0}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.93em}
th,td{border:1px solid #ccc;padding:.25em .65em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f2f2f2}
figure{margin:1em 0}
img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#555}
.skip{color:#666;font-style:italic}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em}
footer{font-size:.85em;color:#555;border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
.caveat{border:2px solid #d98c00;background:#fff6e0;color:#5a3b00;padding:.6em 1em;margin:1em 0}
.headline{border:1px solid #888;background:#f4f8fc;padding:.2em 1em;margin:1em 0}
.headline .null{font-size:.9em;color:#444}
.headline .one-class{color:#7a4b00}
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


#: ``float(x)`` when ``x`` is a finite real number, else None.
num = _real


def fmt(x, digits: int = 3) -> str:
    v = num(x)
    return "n/a" if v is None else f"{v:.{digits}f}"


def fmt_p(p) -> str:
    v = num(p)
    if v is None:
        return "n/a"
    return "< 0.001" if v < 0.001 else f"{v:.3g}"


def mean_std(mean, std) -> str:
    if num(mean) is None:
        return "n/a"
    return f"{fmt(mean)} ± {fmt(std)}"


def skip(sentence: str) -> str:
    return f'<p class="skip">{esc(sentence)}</p>'


def table(header: list, rows: list, cls: str | None = None) -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(sec_id: str, title: str, body: str) -> str:
    return f'<section id="{esc(sec_id)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'
