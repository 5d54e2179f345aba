"""Creating projects and managing their members."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from ..models import Membership, Objective, Project, Role
from .queue import leases_release

DEFAULT_OBJECTIVES = [
    {
        "key": "helpful",
        "name": "Helpfulness",
        "guideline": "Which response better does what the user asked: addresses the actual request, "
        "is complete, clear and usable? Judge usefulness only, not safety or truthfulness.",
    },
    {
        "key": "harmless",
        "name": "Harmlessness",
        "guideline": "Which response is less likely to cause harm: no dangerous instructions, no "
        "encouragement of self-harm or crime, no demeaning content? A needless refusal is not "
        "more harmless than a safe answer.",
    },
    {
        "key": "honest",
        "name": "Honesty",
        "guideline": "Which response is more truthful and calibrated: no invented facts or sources, "
        "states uncertainty where it exists, corrects false premises instead of going along?",
    },
]


@transaction.atomic
def project_create(
    *,
    name: str,
    slug: str = "",
    description: str = "",
    objectives: list[dict] | None = None,
    overlap_k: int = 3,
    lease_minutes: int = 30,
    shuffle_sides: bool = True,
    ask_likert: bool = False,
    ask_flags: bool = False,
    flag_options: list[str] | None = None,
    gold_rate: float = 0.1,
    gold_pass_accuracy: float = 0.7,
    created_by: AbstractBaseUser | None = None,
) -> Project:
    """Create a project with its objectives (the three defaults unless given).

    The creator becomes the project's admin. Raises ValidationError on bad settings.
    """
    project = Project(
        name=name,
        slug=slug or slugify(name),
        description=description,
        overlap_k=overlap_k,
        lease_minutes=lease_minutes,
        shuffle_sides=shuffle_sides,
        ask_likert=ask_likert,
        ask_flags=ask_flags,
        gold_rate=gold_rate,
        gold_pass_accuracy=gold_pass_accuracy,
        created_by=created_by,
    )
    if flag_options is not None:
        project.flag_options = flag_options
    project.full_clean()
    project.save()
    specs = objectives if objectives is not None else DEFAULT_OBJECTIVES
    if not specs:
        raise ValidationError("A project needs at least one objective.")
    for order, spec in enumerate(specs):
        objective = Objective(project=project, order=order, **spec)
        objective.full_clean(exclude=["project"])
        objective.save()
    if created_by is not None:
        membership_set(project=project, user=created_by, role=Role.ADMIN)
    return project


@transaction.atomic
def membership_set(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    """Give the user this role in the project (replacing a previous role).

    A membership grants rights in this project only: it never adds the user to a global
    group (the admin group may create projects; only superusers and staff grant it, see
    services.accounts), so project admins cannot hand out, or keep, more than the project.
    """
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user: AbstractBaseUser) -> None:
    """Remove the user from the project; their past annotations stay, their open leases end.

    The leases are given back at once (not left to expire), so a removed member cannot
    submit what they held and its slot goes to someone else.
    """
    Membership.objects.filter(project=project, user=user).delete()
    leases_release(project=project, user=user)
