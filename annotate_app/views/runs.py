"""The researcher dashboard: start reward-model runs, watch their curves, compare runs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from ..forms import PolicyRunForm, PolicySweepForm, RewardRunForm, row_id
from ..selectors.runs import report_head_rows, run_lineage
from ..selectors.tradeoffs import policy_tradeoff
from ..services.bundles import PROMPT_SOURCES, TARGETS, run_bundle_archive
from ..services.policy_runs import parse_weights, policy_run_create
from ..services.policy_sweeps import policy_sweep_create
from ..services.reward_runs import reward_run_create
from ..services.runs import run_cancel
from .pagination import page_of

# The tag of a "run queued" message: true only while the run waits, so the run page removes it once the
# run's live status says otherwise (static/js/run_charts.js).
RUN_QUEUED = "run-queued"


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    form = RewardRunForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        snapshot = None
        if form.snapshot_id() is not None:
            snapshot = get_object_or_404(project.snapshots, pk=form.snapshot_id())
        init_heads_run = None
        if form.init_heads_run_id() is not None:
            init_heads_run = get_object_or_404(project.reward_runs, pk=form.init_heads_run_id())
        try:
            run = reward_run_create(project=project, snapshot=snapshot, overrides=form.overrides(), user=request.user,
                                    init_heads_run=init_heads_run)
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, f"Reward model run {run.pk} queued.", extra_tags=RUN_QUEUED)
            return redirect("reward-run", slug=slug, run_id=run.pk)
    return _render_dashboard(request, project, form, PolicyRunForm(project=project))


def _add_service_errors(form, error: ValidationError) -> None:
    """Show a service's errors at the form's field of the same name (a GGUF file), the others above the form."""
    errors = error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]
    for field, field_messages in errors:
        form.add_error(field if field in form.fields else None, field_messages)


def _render_dashboard(request, project, form, ppo_form, sweep_form=None):
    runs = page_of(request, project.reward_runs.select_related("snapshot", "created_by"))
    policy_runs = page_of(request, project.policy_runs.select_related("reward_run"), param="ppo_page")
    return render(request, "annotate_app/dashboard.html", {
        "project": project, "form": form, "ppo_form": ppo_form, "runs": runs, "policy_runs": policy_runs,
        "sweep_form": sweep_form or PolicySweepForm(project=project),
    })


@login_required
@require_POST
def policy_run_start(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    ppo_form = PolicyRunForm(request.POST, project=project)
    if ppo_form.is_valid():
        reward_run = get_object_or_404(project.reward_runs, pk=int(ppo_form.cleaned_data["reward_run"]))
        try:
            run = policy_run_create(project=project, reward_run=reward_run, overrides=ppo_form.overrides(),
                                    user=request.user)
        except ValidationError as error:
            _add_service_errors(ppo_form, error)
        else:
            messages.success(request, f"PPO run {run.pk} queued.", extra_tags=RUN_QUEUED)
            return redirect("policy-run", slug=slug, run_id=run.pk)
    return _render_dashboard(request, project, RewardRunForm(project=project), ppo_form)


@login_required
@require_POST
def policy_sweep_start(request, slug):
    """Queue a weight sweep from the dashboard, then show its runs on the trade-off page."""
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    sweep_form = PolicySweepForm(request.POST, project=project)
    if sweep_form.is_valid():
        reward_run = get_object_or_404(project.reward_runs, pk=int(sweep_form.cleaned_data["reward_run"]))
        try:
            sweep = policy_sweep_create(project=project, reward_run=reward_run, grid=sweep_form.grid(),
                                        overrides=sweep_form.overrides(), name=sweep_form.cleaned_data["name"],
                                        user=request.user)
        except ValidationError as error:
            _add_service_errors(sweep_form, error)
        else:
            messages.success(request, f"Weight sweep {sweep.pk} queued: {sweep.runs.count()} PPO runs.")
            return redirect(f"{reverse('policy-runs-compare', args=[slug])}?sweep={sweep.pk}")
    return _render_dashboard(request, project, RewardRunForm(project=project), PolicyRunForm(project=project),
                             sweep_form)


@login_required
def reward_run_page(request, slug, run_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    run = get_object_or_404(project.reward_runs.select_related("snapshot"), pk=run_id)
    return render(request, "annotate_app/reward_run.html", {
        "project": project, "run": run, "lineage": run_lineage(run), "objectives": run.config["objectives"],
        "report": run.report, "head_rows": report_head_rows(run.report),
        "bundle_targets": TARGETS, "bundle_prompts": PROMPT_SOURCES,
    })


@login_required
@require_POST
def reward_run_bundle(request, slug, run_id):
    """Export for training: the run's bundle for TRL, verl or OpenRLHF as a .tar.gz download (``services.bundles``);
    a bad choice goes back to the run page with the message."""
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    run = get_object_or_404(project.reward_runs, pk=run_id)
    try:
        archive, name = run_bundle_archive(
            project=project, reward_run=run, target=request.POST.get("target", ""),
            weights=parse_weights(request.POST.get("weights", "")), prompts=request.POST.get("prompts", "project"),
            reward_url=request.POST.get("reward_url", "").strip(),
        )
    except ValidationError as error:
        for field, field_messages in error.message_dict.items():
            messages.error(request, f"Export for training: {field}: {' '.join(field_messages)}")
        return redirect("reward-run", slug=slug, run_id=run_id)
    return FileResponse(archive, as_attachment=True, filename=name, content_type="application/gzip")


@login_required
@require_POST
def run_cancel_view(request, slug, kind, run_id):
    """Cancel a reward-model (kind "reward") or PPO (kind "policy") run."""
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    runs = project.reward_runs if kind == "reward" else project.policy_runs
    run_cancel(run=get_object_or_404(runs, pk=run_id))
    return redirect("reward-run" if kind == "reward" else "policy-run", slug=slug, run_id=run_id)


@login_required
def policy_run_page(request, slug, run_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    run = get_object_or_404(project.policy_runs.select_related("reward_run"), pk=run_id)
    objectives = run.config["objectives"]
    before_after = [
        {"objective": key, "before": run.eval_before.get(key), "after": run.eval_after.get(key)} for key in objectives
    ]
    return render(request, "annotate_app/policy_run.html", {
        "project": project, "run": run, "objectives": objectives, "before_after": before_after,
        "samples": run.samples.all()[:30],
    })


@login_required
def policy_runs_compare(request, slug):
    """Finished PPO runs on two chosen objectives (a sweep's only, if one is chosen): the trade-off each weighting
    bought, their Pareto front and its hypervolume."""
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    keys = list(project.objectives.values_list("key", flat=True))
    x = request.GET.get("x") if request.GET.get("x") in keys else keys[0]
    y = request.GET.get("y") if request.GET.get("y") in keys else keys[min(1, len(keys) - 1)]
    sweeps = project.policy_sweeps.all()[:50]
    sweep_id = row_id(request.GET.get("sweep"))
    sweep = get_object_or_404(project.policy_sweeps, pk=sweep_id) if sweep_id is not None else None
    tradeoff = policy_tradeoff(project, x, y, sweep)
    sweep_runs = sweep.runs.order_by("pk") if sweep is not None else []
    return render(request, "annotate_app/policy_runs_compare.html", {
        "project": project, "keys": keys, "x": x, "y": y, "sweeps": sweeps, "sweep": sweep, "sweep_runs": sweep_runs,
        "tradeoff": tradeoff, "points": tradeoff.points, "front": tradeoff.front,
    })


@login_required
def reward_runs_compare(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    ids = [pk for pk in map(row_id, request.GET.getlist("runs")) if pk is not None]
    runs = list(project.reward_runs.filter(pk__in=ids).order_by("pk"))
    objectives = sorted({key for run in runs for key in run.config["objectives"]})
    return render(request, "annotate_app/reward_runs_compare.html",
                  {"project": project, "runs": runs, "objectives": objectives})
