"""One palette for every chart of the app: each chart script colours through static/js/palette.js, and each page
that draws charts loads it with the project's objectives (what the colours follow)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_chart_script_colours_through_the_palette():
    scripts = [path for path in (ROOT / "static" / "js").glob("*.js") if "new Chart(" in path.read_text()]
    assert scripts
    for path in scripts:
        text = path.read_text()
        assert "window.mormPalette" in text, path.name
        assert not re.findall(r"[\"']#[0-9a-fA-F]{3,8}[\"']", text), f"{path.name} writes a colour of its own"


def test_every_page_with_charts_loads_the_palette_and_the_objectives():
    pages = [path for path in (ROOT / "templates").rglob("*.html") if "chart.umd.min.js" in path.read_text()]
    assert pages
    for path in pages:
        text = path.read_text()
        assert "{% chart_objectives project %}" in text, path.name
        assert text.index("js/palette.js") < max(text.index(f"js/{name}") for name in
                                                  ("run_charts.js", "report_charts.js", "tradeoff_chart.js",
                                                   "stats_charts.js", "rounds_charts.js")
                                                  if f"js/{name}" in text), path.name
