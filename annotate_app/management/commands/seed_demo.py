import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotate_app.models import Project, Role
from annotate_app.services.imports import comparison_import
from annotate_app.services.projects import membership_set, project_create

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "comparisons.jsonl"
DEMO_SLUG = "demo"
# Demo logins are documented in the README; set MORM_DEMO_PASSWORD to change them all.
DEMO_USERS = [("admin", Role.ADMIN), ("researcher", Role.RESEARCHER), ("annotator", Role.ANNOTATOR)]


class Command(BaseCommand):
    help = "Create the demo project (three objectives, sample trade-off comparisons) and one user per role."

    @transaction.atomic
    def handle(self, *args, **options):
        users = {role: self._user(username, role) for username, role in DEMO_USERS}
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if project is None:
            project = project_create(
                name="Demo: helpful, harmless, honest",
                slug=DEMO_SLUG,
                description="Sample comparisons written for morm, each with a trade-off between objectives.",
                overlap_k=2,
                ask_flags=True,
                created_by=users[Role.ADMIN],
            )
        for role, user in users.items():
            membership_set(project=project, user=user, role=role)
        with DEMO_FILE.open("rb") as fileobj:
            batch = comparison_import(project=project, fileobj=fileobj, format="native", filename=DEMO_FILE.name)
        self.stdout.write(
            f"Project '{project.slug}': {project.comparisons.count()} comparisons "
            f"({batch.created_count} new). Logins:"
        )
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username} / {self._password(username)}")

    def _password(self, username: str) -> str:
        return os.environ.get("MORM_DEMO_PASSWORD", f"morm-{username}")

    def _user(self, username: str, role: str):
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_password(self._password(username))
            # The demo admin may also use Django's admin site.
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
        return user
