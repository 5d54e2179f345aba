"""The project statistics page (admins and researchers)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .. import access
from ..selectors.stats import SCALE_POINTS, project_stats


@login_required
def project_stats_page(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    # Human judgments only: the page is about how well the annotators agree.
    stats = project_stats(project)
    # Django templates cannot look up a key held in a variable: hand them rows in column order.
    objectives = [
        {**objective, "counts": [objective["distribution"][key] for key in SCALE_POINTS]}
        for objective in stats["objectives"]
    ]
    correlation = [
        (objective["name"], [stats["objective_correlation"][objective["key"]][other["key"]]
                             for other in stats["objectives"]])
        for objective in stats["objectives"]
    ]
    # The label distributions as the chart draws them (static/js/stats_charts.js).
    distribution = {"scale_points": list(SCALE_POINTS),
                    "objectives": [{"key": o["key"], "counts": o["counts"]} for o in objectives]}
    return render(
        request,
        "annotate_app/project_stats.html",
        {"project": project, "stats": stats, "scale_points": SCALE_POINTS, "objectives": objectives,
         "correlation": correlation, "distribution": distribution},
    )
