"""One self-contained HTML page (``results/index.html``) with every figure and table on disk.

The page is built from the files the figure modules wrote, nothing else: ``<figure_dir>/<stem>.png``
(embedded as base64 data URIs) with a relative link to ``<stem>.pdf``, and ``<table_dir>/<stem>.json``
(written beside each table's ``.md`` and ``.tex`` by :func:`figures.tables.write_table`: the caption, the
columns, their alignment, the rows' cell texts as in the Markdown, and the lines under the table, among
them the ``Source: ...`` lines of :func:`figures.provenance.source_line`), rendered as HTML tables. CSS is
inline and nothing is fetched from the network, so the page opens from a copied folder or an e-mail.

Tables and figures are grouped by experiment: a table ``<split>_<name>`` belongs to experiment
``<name>``; a figure belongs to the experiment with the longest ``<name>`` that its stem is, or ends
with as ``_<name>`` (``lambda_curves_esc50`` -> ``esc50``, ``test_esc50_folds`` -> ``esc50_folds``);
the figures of no experiment (``data_example``) are shown last, under "Other figures". Each
experiment's heading is followed by its tables' source lines: where it was read, its trials, the
budget and the code's commit.
"""
from __future__ import annotations

import base64
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

SPLITS = ("test", "valid")
OTHER = "Other figures"


@dataclass
class Figure:
    stem: str
    png: str | None  # data URI
    size: tuple[int, int] | None  # (width, height) in CSS pixels: the printed size at 96 CSS px per inch
    links: dict[str, str]  # "PDF"/"PNG" -> relative link


@dataclass
class Table:
    """A table as :func:`read_table` reads it: ``header`` and ``rows`` are cell texts, ``align`` one of
    ``left``/``right``/``center`` per column; ``notes`` the lines under the table that are not source lines."""
    stem: str
    caption: str
    header: list[str]
    align: list[str]
    rows: list[list[str]]
    notes: list[str]
    links: dict[str, str]  # "Markdown"/"LaTeX" -> relative link
    figure: Figure | None = None  # the figure of the same stem, shown under the table


@dataclass
class Section:
    name: str
    sources: list[dict] = field(default_factory=list)  # one per distinct source line
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)  # those without a table of the same stem

    @property
    def anchor(self) -> str:
        return "exp-" + re.sub(r"[^\w-]", "-", self.name)


def experiment_of_table(stem: str) -> str:
    """``"test_esc50_folds"`` -> ``"esc50_folds"``: the experiment a table stem belongs to."""
    for split in SPLITS:
        if stem.startswith(split + "_"):
            return stem[len(split) + 1:]
    return stem


def experiment_of_figure(stem: str, experiments: list[str]) -> str | None:
    """The longest experiment name that ``stem`` equals or ends with as ``_<name>``; ``None`` if none does."""
    matches = [e for e in experiments if stem == e or stem.endswith("_" + e)]
    return max(matches, key=len) if matches else None


def read_table(path: Path) -> tuple[str, list[str], list[str], list[list[str]], list[str]]:
    """``(caption, header, align, rows, notes)`` of a table's JSON file (:func:`figures.tables.write_table`):
    ``notes`` are every line written under the table. Raises ``ValueError`` (``json.JSONDecodeError`` among
    them) or ``KeyError`` for a file that is not such a table."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    header, rows = [str(c) for c in data["columns"]], [[str(c) for c in row] for row in data["rows"]]
    align = list(data.get("align") or ["left"] * len(header))
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"{path}: the rows, columns and alignment differ in length")
    return str(data.get("caption", "")), header, align, rows, [str(line) for line in data.get("sources", [])]


def parse_source_line(line: str) -> dict | None:
    """The parts of a :func:`figures.provenance.source_line` line: ``experiment`` (where it was read),
    ``trials`` (the counts and anything else without a label), and every ``label: value`` part
    (``budget``, ``code``); ``None`` for a line that is not a source line."""
    if not line.startswith("Source: "):
        return None
    parts = line[len("Source: "):].rstrip(".").split("; ")
    out = {"experiment": parts[0], "trials": []}
    for part in parts[1:]:
        label, sep, value = part.partition(": ")
        if sep and re.fullmatch(r"[a-z][a-z _]*", label):
            out[label] = value
        else:
            out["trials"].append(part)
    out["trials"] = "; ".join(out["trials"])
    return out


def _relative(path: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()


def png_css_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` in CSS pixels (96 per inch) of a PNG: its pixel size scaled by the resolution in
    its ``pHYs`` chunk (matplotlib writes the ``dpi``), so a figure shows at the size it was drawn for; the
    pixel size when the PNG states no resolution. Raises ``ValueError`` for bytes that are not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"pHYs":
            per_m_x, per_m_y, unit = struct.unpack(">IIB", data[at + 8:at + 17])
            if unit == 1 and per_m_x and per_m_y:  # pixels per metre
                return round(width * 96 / (per_m_x * 0.0254)), round(height * 96 / (per_m_y * 0.0254))
        if kind in (b"IDAT", b"IEND"):  # pHYs comes before the image data
            break
        at += 12 + length
    return width, height


def collect(figure_dir: Path, table_dir: Path, page_dir: Path) -> list[Section]:
    """The sections of the page, sorted by experiment name, "Other figures" last; links relative to
    ``page_dir``."""
    figure_dir, table_dir = Path(figure_dir), Path(table_dir)
    tables = sorted(table_dir.glob("*.json")) if table_dir.is_dir() else []
    figure_files = [p for p in figure_dir.iterdir() if p.suffix in (".png", ".pdf")] if figure_dir.is_dir() else []
    figure_stems = sorted({p.stem for p in figure_files})
    experiments = sorted({experiment_of_table(p.stem) for p in tables}
                         | {experiment_of_table(s) for s in figure_stems if s.split("_", 1)[0] in SPLITS})
    sections = {name: Section(name) for name in experiments}
    for path in tables:
        try:
            caption, header, align, rows, notes = read_table(path)
        except (ValueError, KeyError, TypeError) as e:
            print(f"skipped the table {path.name}: not a table written by figures.tables.write_table "
                  f"({type(e).__name__}: {e})")
            continue
        links = {label: _relative(path.with_suffix(ext), page_dir)
                 for label, ext in (("Markdown", ".md"), ("LaTeX", ".tex")) if path.with_suffix(ext).exists()}
        section = sections[experiment_of_table(path.stem)]
        sources = [s for s in map(parse_source_line, notes) if s]
        section.sources += [s for s in sources if s not in section.sources]
        section.tables.append(Table(path.stem, caption, header, align, rows,
                                    [n for n in notes if parse_source_line(n) is None], links))
    for stem in figure_stems:
        png, pdf = figure_dir / f"{stem}.png", figure_dir / f"{stem}.pdf"
        links = {label: _relative(p, page_dir) for label, p in (("PDF", pdf), ("PNG", png)) if p.exists()}
        data = png.read_bytes() if png.exists() else None
        figure = Figure(stem, "data:image/png;base64," + base64.b64encode(data).decode("ascii") if data else None,
                        png_css_size(data) if data else None, links)
        name = experiment_of_figure(stem, experiments)
        section = sections.setdefault(OTHER if name is None else name, Section(OTHER))
        same_stem = [t for t in section.tables if t.stem == stem]
        if same_stem:
            same_stem[0].figure = figure
        else:
            section.figures.append(figure)
    return [sections[n] for n in experiments] + ([sections[OTHER]] if OTHER in sections else [])


TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .6rem; padding-bottom: .25rem; border-bottom: 2px solid #d0d7de; }
h3 { font-size: 1rem; margin: 1.6rem 0 .4rem; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
nav { margin: .8rem 0 1rem; }
nav a { margin-right: 1rem; white-space: nowrap; }
a { color: #0b5cad; }
.lead { color: #57606a; margin: 0; }
.source { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; background: #fff;
          border: 1px solid #d0d7de; border-left: 4px solid #0b5cad; padding: .6rem .9rem; margin: .4rem 0 1rem;
          font-size: .9rem; }
.source dt { font-weight: 600; color: #57606a; }
.source dd { margin: 0; overflow-wrap: anywhere; }
.source code { font-size: .85rem; }
.caption { margin: .2rem 0 .5rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; }
th { background: #eef1f4; vertical-align: bottom; }
tbody tr:nth-child(even) { background: #f6f8fa; }
.left { text-align: left; } .right { text-align: right; } .center { text-align: center; }
.note { font-size: .85rem; color: #57606a; }
.files { font-size: .85rem; color: #57606a; }
.files a { margin-left: .5rem; }
figure { margin: 1.2rem 0; background: #fff; border: 1px solid #d0d7de; padding: .8rem; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { margin-top: .4rem; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9rem; }
.empty { color: #57606a; font-style: italic; }
</style>
</head>
<body>
{% macro figure(f) %}
<figure id="figure-{{ f.stem }}">
{% if f.png %}<img src="{{ f.png }}" width="{{ f.size[0] }}" height="{{ f.size[1] }}" alt="figure {{ f.stem }}">{% endif %}
<figcaption>{{ f.stem }}<span class="files">{% for label, href in f.links.items() %}<a href="{{ href }}">{{ label }}</a>{% endfor %}</span></figcaption>
</figure>
{% endmacro %}
<main>
<h1>{{ title }}</h1>
<p class="lead">Written by <code>produce_figures.py</code>: {{ n_tables }} table{{ "" if n_tables == 1 else "s" }} and
{{ n_figures }} figure{{ "" if n_figures == 1 else "s" }} from {{ n_experiments }}
experiment{{ "" if n_experiments == 1 else "s" }}. Figures are embedded; the links open the files next to this page.</p>
{% if sections %}
<nav>{% for s in sections %}<a href="#{{ s.anchor }}">{{ s.name }}</a>{% endfor %}</nav>
{% else %}
<p class="empty">No figures or tables yet: run an experiment with <code>main.py --name=NAME</code>, then
<code>produce_figures.py</code>.</p>
{% endif %}
{% for s in sections %}
<section id="{{ s.anchor }}">
<h2>{{ s.name }}</h2>
{% for src in s.sources %}
<dl class="source">
<dt>experiment</dt><dd><code>{{ src.experiment }}</code></dd>
{% if src.trials %}<dt>trials</dt><dd>{{ src.trials }}</dd>{% endif %}
{% for label, value in src.items() if label not in ("experiment", "trials") %}
<dt>{{ label }}</dt><dd>{% if label == "code" %}<code>{{ value }}</code>{% else %}{{ value }}{% endif %}</dd>
{% endfor %}
</dl>
{% endfor %}
{% for t in s.tables %}
<h3 id="table-{{ t.stem }}">{{ t.stem }}</h3>
{% if t.caption %}<p class="caption">{{ t.caption }}</p>{% endif %}
{% if t.header %}
<div class="scroll"><table>
<thead><tr>{% for h in t.header %}<th class="{{ t.align[loop.index0] }}">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for c in row %}<td class="{{ t.align[loop.index0] }}">{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table></div>
{% endif %}
{% for n in t.notes %}<p class="note">{{ n }}</p>{% endfor %}
<p class="files">table files:{% for label, href in t.links.items() %}<a href="{{ href }}">{{ label }}</a>{% endfor %}</p>
{% if t.figure %}{{ figure(t.figure) }}{% endif %}
{% endfor %}
{% for f in s.figures %}
{% if loop.first and s.tables %}<h3>more figures</h3>{% endif %}
{{ figure(f) }}
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
""", autoescape=True, trim_blocks=True, lstrip_blocks=True)


def build_report(figure_dir: Path, table_dir: Path, page_dir: Path, title: str = "DMEL harness results") -> str:
    """The HTML of the page: every ``*.png``/``*.pdf`` figure of ``figure_dir`` and every table of
    ``table_dir`` (its ``*.json``), grouped by experiment; links relative to ``page_dir`` (the folder the page is written to).
    Reads the files, writes nothing."""
    sections = collect(Path(figure_dir), Path(table_dir), Path(page_dir))
    figures = [f for s in sections for f in s.figures + [t.figure for t in s.tables if t.figure is not None]]
    return TEMPLATE.render(title=title, sections=sections, n_experiments=sum(s.name != OTHER for s in sections),
                           n_tables=sum(len(s.tables) for s in sections), n_figures=len(figures))


def write_report(page: Path, figure_dir: Path, table_dir: Path) -> Path:
    """Write :func:`build_report` to ``page`` (``<results_dir>/index.html``); return its path."""
    page = Path(page)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(build_report(figure_dir, table_dir, page.parent), encoding="utf-8")
    print(f"wrote {page}")
    return page
