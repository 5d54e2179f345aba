"""The researcher dashboard: start reward-model runs, watch their curves, compare runs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from ..forms import RewardRunForm
from ..selectors.runs import run_lineage
from ..services.reward_runs import reward_run_create
from ..services.runs import run_cancel


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    form = RewardRunForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        snapshot = None
        if form.snapshot_id() is not None:
            snapshot = get_object_or_404(project.snapshots, pk=form.snapshot_id())
        try:
            run = reward_run_create(project=project, snapshot=snapshot, overrides=form.overrides(), user=request.user)
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, f"Reward model run {run.pk} queued.")
            return redirect("reward-run", slug=slug, run_id=run.pk)
    runs = project.reward_runs.select_related("snapshot", "created_by")[:50]
    return render(request, "annotate_app/dashboard.html", {"project": project, "form": form, "runs": runs})


@login_required
def reward_run_page(request, slug, run_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    run = get_object_or_404(project.reward_runs.select_related("snapshot"), pk=run_id)
    return render(request, "annotate_app/reward_run.html",
                  {"project": project, "run": run, "lineage": run_lineage(run), "objectives": run.config["objectives"]})


@login_required
@require_POST
def reward_run_cancel_view(request, slug, run_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    run_cancel(run=get_object_or_404(project.reward_runs, pk=run_id))
    return redirect("reward-run", slug=slug, run_id=run_id)


@login_required
def reward_runs_compare(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    ids = [int(value) for value in request.GET.getlist("runs") if value.isdigit()]
    runs = list(project.reward_runs.filter(pk__in=ids).order_by("pk"))
    objectives = sorted({key for run in runs for key in run.config["objectives"]})
    return render(request, "annotate_app/reward_runs_compare.html",
                  {"project": project, "runs": runs, "objectives": objectives})
