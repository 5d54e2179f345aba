"""The one place that decides who may see and do what.

Roles are per project (``Membership``) and grant nothing outside it. The global Django
``admin`` group may create projects; only superusers and staff grant it (Django's admin
site, ``manage.py grant_role``), never a project admin. Lookups of a project a user is
not a member of raise ``Http404``, not 403: a guessed slug reveals nothing. Superusers act
as project admins everywhere.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from . import sql
from .models import Membership, Project, Role, Task

ALL_ROLES = frozenset(Role)
DATA_ROLES = frozenset({Role.ADMIN, Role.RESEARCHER})


def project_role(user: AbstractBaseUser, project: Project) -> Role | None:
    """The user's role in the project, or None for a non-member."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    return Role(role) if role else None


def projects_visible_to(user: AbstractBaseUser) -> QuerySet[Project]:
    """Projects the user is a member of (all of them for a superuser)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def project_for(user: AbstractBaseUser, slug: str, *, roles: frozenset[Role] = ALL_ROLES) -> Project:
    """The project with this slug if the user may act on it in one of ``roles``.

    Raises Http404 for non-members and unknown slugs alike, PermissionDenied for a
    member whose role is not enough.
    """
    if not user.is_authenticated:
        raise Http404("No such project.")
    # One hand-written query for the project and the user's role in it: every project
    # request pays it, and the ORM's compile of it cost more than running it (annotate_app/sql.py).
    project = next(iter(Project.objects.raw(
        f"SELECT p.*, (SELECT m.role FROM {sql.MEMBERSHIP} m WHERE m.project_id = p.id AND m.user_id = %s)"
        f" AS member_role FROM {sql.PROJECT} p WHERE p.slug = %s", [user.pk, slug])), None)
    role = None
    if project is not None:
        role = Role.ADMIN if user.is_superuser else (Role(project.member_role) if project.member_role else None)
    if role is None:
        raise Http404("No such project.")
    if role not in roles:
        raise PermissionDenied(f"This needs the {' or '.join(sorted(roles))} role in the project.")
    return project


def can_create_projects(user: AbstractBaseUser) -> bool:
    """Superusers, and users a superuser or staff member put in the global admin group."""
    return user.is_authenticated and (user.is_superuser or user.groups.filter(name=Role.ADMIN).exists())


_TASK_COLUMNS = ("id", "comparison_id", "annotator_id", "status", "shown_swapped", "leased_at", "expires_at",
                 "finished_at")


def task_for(user: AbstractBaseUser, task_id: int) -> Task:
    """One of ``tasks_of(user)`` by id, with its project and the project's ``objective_ids`` loaded, in one statement
    (every submit asks); else Http404."""
    if not user.is_authenticated or not 0 < task_id < 2**63:  # ids are 64-bit: SQLite cannot take a larger int
        raise Http404("No such task.")
    member = "" if user.is_superuser else (
        f" AND EXISTS (SELECT 1 FROM {sql.MEMBERSHIP} m WHERE m.project_id = t.project_id AND m.user_id = %s)")
    columns = ", ".join(f"t.{name} AS task_{name}" for name in _TASK_COLUMNS)
    project = next(iter(Project.objects.raw(
        f"SELECT p.*, {columns}, {sql.objective_ids('p.id')} AS objective_list FROM {sql.TASK} t"
        f" JOIN {sql.PROJECT} p ON p.id = t.project_id WHERE t.id = %s AND t.annotator_id = %s{member}",
        [task_id, user.pk] + ([] if user.is_superuser else [user.pk]))), None)
    if project is None:
        raise Http404("No such task.")
    # Extra columns of a raw query come as the driver gives them: SQLite's booleans are
    # integers and its datetimes text.
    values = {name: getattr(project, f"task_{name}") for name in _TASK_COLUMNS}
    values["shown_swapped"] = bool(values["shown_swapped"])
    for name in ("leased_at", "expires_at", "finished_at"):
        values[name] = values[name] and sql.datetime_of(values[name])
    # What a submit validates against (services.annotations): the project's {objective key: id}.
    project.objective_ids = sql.objective_ids_of(project.objective_list)
    return Task(project=project, **values)


def tasks_of(user: AbstractBaseUser) -> QuerySet[Task]:
    """Tasks the user may act on: only their own, and only in projects they still belong to."""
    if not user.is_authenticated:
        return Task.objects.none()
    if user.is_superuser:
        return Task.objects.filter(annotator=user)
    return Task.objects.filter(annotator=user, project__memberships__user=user)
