"""What the browser tests ask a page's Chart.js charts (run_charts.js and report_charts.js draw them)."""


def points_js(canvas_id: str) -> str:
    """A JS function returning how many points the chart on ``canvas_id`` draws, all lines together."""
    return f"""() => {{ const chart = Chart.getChart('{canvas_id}');
    return chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0; }}"""


def labels_js(canvas_id: str) -> str:
    """A JS function returning the labels of the lines on ``canvas_id``."""
    return f"() => Chart.getChart('{canvas_id}').data.datasets.map(d => d.label)"
