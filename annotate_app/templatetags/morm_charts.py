"""What every chart page gives the palette (static/js/palette.js): the project's objectives in their order."""

from django import template
from django.utils.html import json_script

register = template.Library()


@register.simple_tag
def chart_objectives(project) -> str:
    """``<script type="application/json" id="chart-objectives">`` with ``[{key, name}, ...]`` in the project's
    objective order: each objective's colour in every chart follows its place here."""
    objectives = [{"key": key, "name": name} for key, name in project.objectives.values_list("key", "name")]
    return json_script(objectives, "chart-objectives")
