"""Self-contained HTML reports: sections of text, plotly figures, tables and code in one file that needs no
network to be viewed (the plotly.js bundle is embedded once per page). Experiments, model evaluations and drift
monitoring build their pages with it; `write` keeps a local copy, `upload` puts one in the bucket.

    report = Report("mymodel: experiments", "3 runs")
    section = report.section("Learning curves", "loss and accuracy per epoch")
    section.figure(plotly_figure)
    section.table(rows, headers)
    report.write(path); report.upload(bucket, "reports/...html")
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 24px; color: #1f2328; background: #fff; }
h1 { margin-bottom: 4px; } .subtitle { color: #59636e; margin-top: 0; }
section { margin-top: 28px; } h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #d1d9e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
.figure { margin: 8px 0 16px; } .caption { color: #59636e; font-size: 13px; }
"""


@dataclass
class Section:
    """A titled part of a report; its blocks are HTML fragments, added through the methods below."""

    title: str
    blocks: list[str] = field(default_factory=list)
    figures: int = 0

    def text(self, text: str) -> Section:
        self.blocks.append(f"<p>{html.escape(text)}</p>")
        return self

    def figure(self, figure, caption: str | None = None) -> Section:
        """A plotly figure, drawn by the page's one plotly.js (no network)."""
        div = figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})
        note = f'<div class="caption">{html.escape(caption)}</div>' if caption else ""
        self.blocks.append(f'<div class="figure">{div}{note}</div>')
        self.figures += 1
        return self

    def table(self, rows, headers) -> Section:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in row) + "</tr>"
            for row in rows
        )
        self.blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def code(self, text: str, summary: str | None = None) -> Section:
        """Preformatted text (a diff, a log); folded under `summary` when one is given."""
        block = f"<pre>{html.escape(text)}</pre>"
        if summary:
            block = f"<details><summary>{html.escape(summary)}</summary>{block}</details>"
        self.blocks.append(block)
        return self


@dataclass
class Report:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str, text: str | None = None) -> Section:
        section = Section(title)
        if text:
            section.text(text)
        self.sections.append(section)
        return section

    @property
    def figures(self) -> int:
        """How many figures the page draws."""
        return sum(s.figures for s in self.sections)

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        body = "\n".join(
            f"<section><h2>{html.escape(s.title)}</h2>\n" + "\n".join(s.blocks) + "</section>" for s in self.sections
        )
        script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if self.figures else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>{script}</head>\n"
            f'<body><h1>{html.escape(self.title)}</h1><p class="subtitle">{html.escape(self.subtitle)}</p>\n'
            f"{body}\n</body></html>\n"
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html(), encoding="utf-8")
        return path

    def upload(self, bucket, name: str) -> str:
        """Puts the page at gs://<bucket>/<name>; returns that URL."""
        bucket.blob(name).upload_from_string(self.html(), content_type="text/html; charset=utf-8")
        return f"gs://{bucket.name}/{name}"
