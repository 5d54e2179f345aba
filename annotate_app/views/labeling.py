"""The annotation page: one task at a time, keyboard first."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from ..forms import JudgmentForm
from ..scale import scale_points
from ..selectors.annotations import annotation_as_shown, annotation_own, annotation_previous
from ..selectors.queue import annotator_progress
from ..services.annotations import TaskConflict, annotation_edit, annotation_submit, task_skip
from ..services.queue import task_next


def _render_task(request, project, task, form, progress=None, *, editing=None):
    """The labeling page for a task; ``editing``: the earlier annotation of it being edited (Back)."""
    comparison = task.comparison
    texts = [comparison.response_a, comparison.response_b]
    if task.shown_swapped:
        texts.reverse()
    if editing is None:
        action = reverse("label-submit", args=[project.slug, task.pk])
        back_url = reverse("label-back", args=[project.slug])
    else:
        action = reverse("annotation-edit", args=[project.slug, editing.pk])
        back_url = f"{reverse('label-back', args=[project.slug])}?before={editing.pk}"
    return render(
        request,
        "annotate_app/label.html",
        {
            "project": project,
            "task": task,
            "prompt": comparison.prompt_turns,
            "responses": [("A", texts[0]), ("B", texts[1])],
            "form": form,
            "form_action": action,
            "back_url": back_url,
            "editing": editing,
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


@login_required
def label_back(request, slug):
    """Back: the user's submission before ``?before=`` (their latest without it), opened for editing."""
    project = access.project_for(request.user, slug)
    before = request.GET.get("before", "")
    # Ids are 64-bit: a larger number is no id (and SQLite could not even compare it).
    if before and not (before.isdigit() and int(before) < 2**63):
        return HttpResponseBadRequest("before: expected an annotation id.")
    previous = annotation_previous(project=project, user=request.user, before=int(before) if before else None)
    if previous is None:
        messages.info(request, "There is no earlier submission of yours to go back to.")
        return redirect("annotation-edit", slug=slug, annotation_id=before) if before else redirect("label", slug=slug)
    return redirect("annotation-edit", slug=slug, annotation_id=previous.pk)


@login_required
@require_http_methods(["GET", "POST"])
def annotation_edit_page(request, slug, annotation_id):
    """An earlier submission of the user's, pre-filled as they saw it; Save records the edit."""
    project = access.project_for(request.user, slug)
    annotation = annotation_own(user=request.user, annotation_id=annotation_id, project=project)
    if request.method != "POST":
        form = JudgmentForm(project=project, initial=annotation_as_shown(annotation))
        return _render_task(request, project, annotation.task, form, editing=annotation)
    form = JudgmentForm(request.POST, project=project)
    if form.is_valid():
        try:
            revision = annotation_edit(annotation=annotation, user=request.user, judgments=form.judgments(),
                                       flags_a=form.cleaned_data.get("flags_a"),
                                       flags_b=form.cleaned_data.get("flags_b"))
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, "Saved your changes to an earlier submission." if revision
                             else "No changes to save in that earlier submission.")
            return redirect("label", slug=slug)
    return _render_task(request, project, annotation.task, form, editing=annotation)
