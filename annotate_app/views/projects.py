"""Project list, creation, members and imports."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import access
from ..forms import ImportForm, MemberForm, ProjectForm, ProjectSettingsForm, row_id
from ..importers import ImportFormatError
from ..models import Role
from ..selectors.queue import annotator_progress
from ..services.imports import comparison_import_upload
from ..services.project_settings import project_settings_update
from ..services.projects import membership_remove, membership_set, project_create
from .pagination import page_of

ADMIN_ONLY = frozenset({Role.ADMIN})


@login_required
def home(request):
    projects = page_of(request, access.projects_visible_to(request.user).distinct().order_by("name", "id"))
    rows = [
        {
            "project": project,
            "role": access.project_role(request.user, project),
            "progress": annotator_progress(project=project, user=request.user),
        }
        for project in projects
    ]
    return render(request, "annotate_app/home.html",
                  {"rows": rows, "projects": projects, "can_create": access.can_create_projects(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    if not access.can_create_projects(request.user):
        raise PermissionDenied("Only users in the admin group may create projects.")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in ProjectForm.Meta.fields}
        try:
            project = project_create(**data, objectives=form.objective_specs(), created_by=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Project {project.name} created.")
            return redirect("project-members", slug=project.slug)
    return render(request, "annotate_app/project_form.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def project_members(request, slug):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    form = MemberForm(request.POST if request.POST.get("action") == "add" else None)
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            membership = project.memberships.filter(pk=row_id(request.POST.get("membership"))).first()
            if membership is not None and membership.user != request.user:
                membership_remove(project=project, user=membership.user)
            return redirect("project-members", slug=slug)
        if form.is_valid():
            membership_set(project=project, user=form.cleaned_data["username"], role=form.cleaned_data["role"])
            messages.success(request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}.")
            return redirect("project-members", slug=slug)
    memberships = page_of(request, project.memberships.select_related("user").order_by("role", "user__username"))
    return render(
        request, "annotate_app/project_members.html", {"project": project, "form": form, "memberships": memberships}
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_import(request, slug):
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    form = ImportForm(request.POST or None, request.FILES or None, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            batch = comparison_import_upload(
                project=project,
                upload=form.cleaned_data["file"],
                format=form.cleaned_data["format"],
                objective=form.cleaned_data["objective"] or None,
                user=request.user,
            )
        except ImportFormatError as error:
            if error.field in form.fields:
                form.add_error(error.field, f"Nothing was imported: {error.message}")
            else:
                form.add_error(None, f"Nothing was imported: {error}")
        else:
            messages.success(
                request,
                f"Imported {batch.filename}: {batch.created_count} created, {batch.skipped_count} skipped, "
                f"{batch.label_count} labels.",
            )
            return redirect("project-import", slug=slug)
    batches = page_of(request, project.import_batches.order_by("-id"))
    return render(request, "annotate_app/project_import.html", {"project": project, "form": form,
                                                                 "batches": batches})


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request, slug):
    """Project admins: the settings page (the basics, the queue's order, the loop's retrain settings)."""
    project = access.project_for(request.user, slug, roles=ADMIN_ONLY)
    form = ProjectSettingsForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            project_settings_update(project=project, user=request.user, data=form.settings())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project-settings", slug=slug)
    return render(request, "annotate_app/project_settings.html", {"project": project, "form": form})
