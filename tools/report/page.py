"""report.html: the report as one self-contained page a researcher opens without a server.

The template lives here, not in a data file, so the page renders wherever the package is
installed; figures are embedded as data URIs and nothing points outside the file.
"""

from __future__ import annotations

from jinja2 import Environment

from alloop.tools.report.sections import all_sections, summary_line
from alloop.tools.report.tables import Section
from alloop.tools.run.rundir import RunDir, atomic_write_text
from alloop.tools.run.schema import utc_now

PAGE = "report.html"

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Run report: {{ name }}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 62rem; margin: 0 auto; padding: 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-top: .6rem; }
nav a { margin-right: .8rem; white-space: nowrap; }
img { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: .2rem .45rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
caption { text-align: left; font-style: italic; }
.note { color: #444; }
</style>
</head>
<body>
<h1>Run report: {{ name }}</h1>
<p>{{ summary }}</p>
<p class="note">Written {{ written }} from the run's files alone.</p>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a> {% endfor %}</nav>
{% for s in sections %}
<section id="{{ s.id }}">
<h2>{{ s.title }}</h2>
{% for alt, uri in s.figures %}<figure><img alt="{{ alt }}" src="{{ uri }}"></figure>
{% endfor %}
{% for note in s.notes %}<p class="note">{{ note }}</p>
{% endfor %}
{% for t in s.tables %}<div class="scroll"><table>
{% if t.caption %}<caption>{{ t.caption }}</caption>{% endif %}
<thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table></div>
{% endfor %}
</section>
{% endfor %}
</body>
</html>
"""


def render_page(name: str, summary: str, sections: list[Section]) -> str:
    """The page's HTML; every text is escaped, so an item id or a note cannot inject markup."""
    template = Environment(autoescape=True, trim_blocks=True).from_string(TEMPLATE)
    return template.render(name=name, summary=summary, sections=sections, written=utc_now())


def write_page(run: RunDir, baseline: RunDir | None = None) -> str:
    """Write report.html into the run folder (atomically, as report.md is) and return its name."""
    html = render_page(run.name, summary_line(run, run.spec(), run.results()), all_sections(run, baseline))
    atomic_write_text(run.inside(PAGE), html)
    return PAGE
