"""results/index.html: every table's cells, every PNG byte for byte, relative links to the PDFs, nothing
from the network; on a hand-made results folder, then from produce_figures.py on a real experiment
(conftest's session-wide `tiny_figures`)."""
import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from figures.report import build_report, experiment_of_figure, parse_source_line, png_css_size, \
    read_table  # noqa: E402
from figures.tables import write_table  # noqa: E402
from tests.independent import read_markdown_table  # noqa: E402

SOURCE = ("Source: /runs/rr/esc50; 6 of 8 trials finished (1 errored); budget: max_epochs 40, epochs run 3-40, "
          "2 samples (seeds) per configuration; code: 0653fc5.")


class Page(HTMLParser):
    """What a browser would load or follow: tables (cell texts per row), image sources, link targets."""

    def __init__(self, html: str):
        super().__init__()
        self.tables, self.images, self.links, self.ids, self._cell = [], [], [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        for name in ("src", "href", "srcset", "poster", "data"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(name) or ""), (tag, attrs)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None


def png(path: Path, color: str) -> bytes:
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1], color=color)
    for ext in ("png", "pdf"):
        fig.savefig(path.with_suffix(f".{ext}"), dpi=30)
    plt.close(fig)
    return path.with_suffix(".png").read_bytes()


def results_folder(root: Path) -> dict:
    """Two experiments' tables (written by the project's write_table) and figures, one figure of no
    experiment, one PNG without a PDF; returns the PNGs' bytes by stem."""
    figures, tables = root / "figures", root / "tables"
    figures.mkdir(parents=True)
    esc = pd.DataFrame({"model": ["cnn6", "cnn6 <b>"], "init ms": [10.0, 35.0], "acc %": ["71.2 ± 0.4", "-"]})
    write_table(esc, tables, "test_esc50", "ESC-50, test accuracy & more", SOURCE)
    folds = pd.DataFrame({"fold": [1, 2], "acc %": ["60.0", "61.5"]})
    write_table(folds, tables, "test_esc50_folds", "ESC-50 folds", SOURCE.replace("esc50", "esc50_folds"))
    pngs = {stem: png(figures / stem, color) for stem, color in
            (("test_esc50", "red"), ("lambda_curves_esc50", "blue"), ("test_esc50_folds", "green"),
             ("data_example", "black"))}
    (figures / "lonely.png").write_bytes(pngs["data_example"])  # a PNG without a PDF
    pngs["lonely"] = pngs["data_example"]
    return pngs


def test_table_json_round_trip(tmp_path):
    """The JSON beside the table holds the cells exactly as the Markdown shows them (a "|" in a cell too)."""
    df = pd.DataFrame({"a": ["x", "y | z"], "b": [1.5, 20.0]})
    write_table(df, tmp_path, "t", "A caption.", ["Source: here; 1 of 1 trials finished; budget: x; code: abc."])
    caption, header, align, rows, notes = read_table(tmp_path / "t.json")
    assert caption == "A caption."
    assert header == ["a", "b"] and align == ["left", "right"]
    assert rows == [["x", "1.5"], ["y | z", "20.0"]]
    assert notes == ["Source: here; 1 of 1 trials finished; budget: x; code: abc."]
    md_header, md_rows, md_notes = read_markdown_table((tmp_path / "t.md").read_text())
    assert md_header == header and md_rows[0] == rows[0] and md_notes == notes  # its row 2 splits at the "|"
    assert "| y | z | 20.0 |" in (tmp_path / "t.md").read_text()


def test_source_line_parts():
    parts = parse_source_line(SOURCE)
    assert parts == {"experiment": "/runs/rr/esc50", "trials": "6 of 8 trials finished (1 errored)",
                     "budget": "max_epochs 40, epochs run 3-40, 2 samples (seeds) per configuration",
                     "code": "0653fc5"}
    assert parse_source_line("A note.") is None


def test_png_shows_at_its_printed_size(tmp_path):
    """A 1 x 1 inch figure saved at 30 dpi is 30 x 30 pixels and 96 x 96 CSS pixels (96 per inch)."""
    data = png(tmp_path / "f", "red")
    assert data[16:24] == (30).to_bytes(4, "big") * 2
    assert png_css_size(data) == (96, 96)
    assert png_css_size(data.replace(b"pHYs", b"tEXt")) == (30, 30)  # no resolution stated: pixels


def test_figures_go_to_the_longest_experiment_name():
    names = ["esc50", "esc50_folds", "audio_mnist"]
    assert experiment_of_figure("test_esc50_folds", names) == "esc50_folds"
    assert experiment_of_figure("lambda_curves_esc50", names) == "esc50"
    assert experiment_of_figure("lambda_curves_audio_mnist", names) == "audio_mnist"
    assert experiment_of_figure("data_example", names) is None


def test_page_holds_every_table_figure_and_link(tmp_path):
    pngs = results_folder(tmp_path)
    html = build_report(tmp_path / "figures", tmp_path / "tables", tmp_path)
    page = Page(html)
    # every table, header and cells, as HTML (escaped: "<b>" is text, not markup)
    assert len(page.tables) == 2
    assert page.tables[0] == [["model", "init ms", "acc %"], ["cnn6", "10.0", "71.2 ± 0.4"], ["cnn6 <b>", "35.0", "-"]]
    assert page.tables[1] == [["fold", "acc %"], ["1", "60.0"], ["2", "61.5"]]  # as written: "60.0" stays "60.0"
    assert "cnn6 &lt;b&gt;" in html and "test accuracy &amp; more" in html
    # every PNG, byte for byte, in a data URI; nothing else as an image source
    decoded = [base64.b64decode(src.removeprefix("data:image/png;base64,")) for src in page.images]
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert html.count('width="96" height="96"') == len(pngs)
    assert sorted(decoded) == sorted(pngs.values())
    # relative links to the PDFs (and the table files), each to a file that exists
    pdfs = sorted(link for link in page.links if link.endswith(".pdf"))
    assert pdfs == sorted(f"figures/{s}.pdf" for s in pngs if s != "lonely")
    assert all((tmp_path / link).is_file() for link in page.links if not link.startswith("#"))
    assert "tables/test_esc50.tex" in page.links
    # budget and commit of each experiment, once per experiment
    assert html.count("0653fc5") == 2 and html.count("max_epochs 40, epochs run 3-40") == 2
    # grouping: the esc50_folds figure under its own experiment, data_example under "Other figures"
    sections = re.split(r"<section ", html)[1:]
    assert [re.search(r"<h2>(.*?)</h2>", s).group(1) for s in sections] == ["esc50", "esc50_folds", "Other figures"]
    assert "figure-lambda_curves_esc50" in sections[0] and "figure-test_esc50_folds" in sections[1]
    assert "figure-data_example" in sections[2] and "figure-lonely" in sections[2]
    # no network: no http(s) anywhere, ids unique (anchors work)
    assert not re.search(r"https?:", html)
    assert len(page.ids) == len(set(page.ids))


def test_links_are_relative_to_the_page(tmp_path):
    results_folder(tmp_path / "r")
    html = build_report(tmp_path / "r/figures", tmp_path / "r/tables", tmp_path / "site")
    assert "../r/figures/test_esc50.pdf" in Page(html).links


def test_empty_results_say_what_to_do(tmp_path):
    page = build_report(tmp_path / "figures", tmp_path / "tables", tmp_path)
    assert "No figures or tables yet" in page and "main.py --name=NAME" in page


def test_produce_figures_writes_the_page(tiny_experiment, tiny_figures):
    out, printed = tiny_figures
    assert f"wrote {out / 'index.html'}" in printed
    html = (out / "index.html").read_text(encoding="utf-8")
    page = Page(html)
    stems = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert "test_time_frequency" in stems and "data_example" in stems
    assert sorted(base64.b64decode(s.split(",", 1)[1]) for s in page.images) == \
        sorted((out / "figures" / f"{s}.png").read_bytes() for s in stems)
    assert sorted(link for link in page.links if link.endswith(".pdf")) == [f"figures/{s}.pdf" for s in stems]
    md = (out / "tables/test_time_frequency.md").read_text()
    header, rows, notes = read_markdown_table(md)
    assert page.tables == [[header, *rows]]
    source = parse_source_line(notes[-1])
    assert source["code"] in html and source["budget"] in html
    assert f"{tiny_experiment / 'time_frequency'}" in html
    assert not re.search(r"https?:", html)
