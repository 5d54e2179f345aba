"""The annotation page: one task at a time, keyboard first."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .. import access
from ..forms import JudgmentForm
from ..scale import scale_points
from ..selectors.queue import annotator_progress
from ..services.annotations import TaskConflict, annotation_submit, task_skip
from ..services.queue import task_next


def _render_task(request, project, task, form, progress=None):
    comparison = task.comparison
    texts = [comparison.response_a, comparison.response_b]
    if task.shown_swapped:
        texts.reverse()
    return render(
        request,
        "annotate_app/label.html",
        {
            "project": project,
            "task": task,
            "prompt": comparison.prompt_turns,
            "responses": [("A", texts[0]), ("B", texts[1])],
            "form": form,
            "scale": scale_points(),
            "progress": progress or annotator_progress(project=project, user=request.user),
        },
    )


@login_required
def label(request, slug):
    project = access.project_for(request.user, slug)
    following = task_next(project=project, user=request.user)
    if following.task is None:
        return render(request, "annotate_app/label_done.html", {"project": project, "progress": following.progress})
    return _render_task(request, project, following.task, JudgmentForm(project=project), following.progress)


@login_required
@require_POST
def label_submit(request, slug, task_id):
    project = access.project_for(request.user, slug)
    task = get_object_or_404(access.tasks_of(request.user).filter(project=project), pk=task_id)
    form = JudgmentForm(request.POST, project=project)
    if form.is_valid():
        try:
            annotation_submit(
                task=task,
                user=request.user,
                judgments=form.judgments(),
                flags_a=form.cleaned_data.get("flags_a"),
                flags_b=form.cleaned_data.get("flags_b"),
                time_spent_ms=form.cleaned_data["time_spent_ms"],
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        except TaskConflict as conflict:
            messages.warning(request, str(conflict))
            return redirect("label", slug=slug)
        else:
            return redirect("label", slug=slug)
    return _render_task(request, project, task, form)


@login_required
@require_POST
def label_skip(request, slug, task_id):
    project = access.project_for(request.user, slug)
    task = get_object_or_404(access.tasks_of(request.user).filter(project=project), pk=task_id)
    try:
        task_skip(task=task, user=request.user)
    except TaskConflict as conflict:
        messages.warning(request, str(conflict))
    return redirect("label", slug=slug)
