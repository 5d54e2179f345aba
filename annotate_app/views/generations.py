"""The generations page: generate comparisons from a policy, and follow the generations of the project."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from ..forms import GenerationForm
from ..services.generations import generation_create
from ..services.runs import run_cancel
from .pagination import page_of
from .runs import _add_service_errors


@login_required
@require_http_methods(["GET", "POST"])
def generations_page(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    # A PPO run's page links here with the run (and its reward run) chosen.
    initial = {name: request.GET[name] for name in ("policy_run", "reward_run") if name in request.GET}
    form = GenerationForm(request.POST or None, request.FILES or None, project=project, initial=initial)
    if request.method == "POST" and form.is_valid():
        policy_run = reward_run = None
        if form.policy_run_id() is not None:
            policy_run = get_object_or_404(project.policy_runs, pk=form.policy_run_id())
        if form.reward_run_id() is not None:
            reward_run = get_object_or_404(project.reward_runs, pk=form.reward_run_id())
        try:
            generation = generation_create(project=project, user=request.user, policy_run=policy_run,
                                           reward_run=reward_run, prompts_file=form.cleaned_data["prompts"],
                                           overrides=form.overrides())
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, f"Generation {generation.pk} queued.")
            return redirect("generations", slug=slug)
    generations = page_of(request, project.generations.select_related("import_batch"))
    return render(request, "annotate_app/generations.html",
                  {"project": project, "form": form, "generations": generations})


@login_required
@require_POST
def generation_cancel(request, slug, generation_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    run_cancel(run=get_object_or_404(project.generations, pk=generation_id))
    return redirect("generations", slug=slug)
