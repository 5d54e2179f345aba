"""Export page (snapshots with live progress) and gold items page."""

from dataclasses import fields

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .. import access
from ..forms import ExportForm, GoldForm
from ..models import Role, SnapshotStatus
from ..services.gold import comparison_mark_gold, comparison_unmark_gold
from ..services.snapshots import ExportFilters, snapshot_create
from .pagination import page_of

ADMIN_ONLY = frozenset({Role.ADMIN})
FILTER_NAMES = [f.name for f in fields(ExportFilters)]


@login_required
@require_http_methods(["GET", "POST"])
def project_exports(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    form = ExportForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            snapshot = snapshot_create(
                project=project,
                format=data["format"],
                objective=data["objective"],
                filters=ExportFilters(**{name: data[name] for name in FILTER_NAMES}),
                user=request.user,
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, f"Snapshot {snapshot.pk} is {snapshot.status}.")
            return redirect("project-exports", slug=slug)
    snapshots = page_of(request, project.snapshots.select_related("created_by"))
    active = any(s.status in (SnapshotStatus.QUEUED, SnapshotStatus.RUNNING) for s in snapshots)
    return render(
        request,
        "annotate_app/project_exports.html",
        {"project": project, "form": form, "snapshots": snapshots, "refresh": active},
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_gold(request, slug):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    form = GoldForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            comparison = comparison_mark_gold(comparison=form.cleaned_data["comparison"], expected=form.expected())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, f"{comparison} is now a gold item.")
            return redirect("project-gold", slug=slug)
    gold = project.comparisons.filter(is_gold=True)
    return render(request, "annotate_app/project_gold.html", {"project": project, "form": form, "gold": gold})


@login_required
@require_POST
def project_gold_remove(request, slug, comparison_id):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    comparison_unmark_gold(comparison=get_object_or_404(project.comparisons, pk=comparison_id))
    return redirect("project-gold", slug=slug)
