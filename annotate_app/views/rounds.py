"""The Rounds page: the loop's rounds (snapshot → reward run → PPO run → generated batch → labels), charted."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import access
from ..models import RoundTrigger
from ..selectors.rounds import round_rows, rounds_chart, rounds_of
from ..services.rounds import round_start
from .pagination import page_of


@login_required
@require_http_methods(["GET", "POST"])
def project_rounds(request, slug):
    """Researchers and admins: the rounds, latest first, with charts across them; POST starts a round now."""
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    if request.method == "POST":
        try:
            started = round_start(project=project, trigger=RoundTrigger.MANUAL, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Round {started.number} started: reward model run {started.reward_run_id}.")
        return redirect("project-rounds", slug=slug)
    rounds = page_of(request, rounds_of(project))
    return render(request, "annotate_app/project_rounds.html", {
        "project": project, "rounds": rounds, "rows": round_rows(rounds), "chart": rounds_chart(project),
        "is_admin": access.project_role(request.user, project) == "admin",
    })
