"""The report's pages: ``index.html`` from one Jinja2 template (tables rendered by pandas' Styler) and
``README.md`` with the same sections. Each section heading appears once; tables and figures inside a section
carry captions, not headings."""

from __future__ import annotations

import dataclasses

CSS = (
    "body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;"
    "margin:.5em 0 1.5em}caption{font-weight:bold;text-align:left;padding:.3em 0}td,th{border:1px solid #bbb;"
    "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}p.caption{font-weight:bold}"
    "img{max-width:100%;border:1px solid #eee}figcaption{font-weight:bold}.notes{font-size:90%;color:#444}"
)

TEMPLATE = """<!doctype html>
<html><head><meta charset='utf-8'><title>{{ title }}</title><style>{{ css }}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ summary }}</p>
{% for section in sections %}<h2 id='{{ section.anchor }}'>{{ section.heading }}</h2>
{% for block in section.blocks %}{% if block.table is not none %}{{ block.table.html() | safe }}
{% else %}<figure><img src='{{ block.stem }}.png' alt='{{ block.title }}'><figcaption>{{ block.title }} (<a href='{{ block.stem }}.pdf'>PDF</a>)</figcaption>{% if block.notes %}<ul class=notes>{% for n in block.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}</figure>
{% endif %}{% endfor %}{% endfor %}</body></html>
"""


@dataclasses.dataclass
class Block:
    table: object = None  # a render.Table
    title: str = ""  # a figure's caption
    stem: str = ""
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Section:
    heading: str
    anchor: str
    blocks: list


def render_html(title: str, summary: str, sections: list[Section]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(title=title, summary=summary, sections=sections, css=CSS)


def render_md(title: str, summary: str, sections: list[Section]) -> str:
    out = [f"# {title}", "", summary, ""]
    for s in sections:
        out += [f"## {s.heading}", ""]
        for b in s.blocks:
            if b.table is not None:
                out.append(b.table.md(heading=None))
            else:
                out += [f"**{b.title}** ([PDF]({b.stem}.pdf))", "", f"![{b.title}]({b.stem}.png)", ""]
                out += [f"- {n}" for n in b.notes] + ([""] if b.notes else [])
    return "\n".join(out) + "\n"
