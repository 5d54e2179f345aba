from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotate_app.management.cli import command_error
from annotate_app.services.accounts import group_grant, group_revoke


class Command(BaseCommand):
    help = (
        "Put a user in a global group, or take them out with --revoke "
        "(the admin group may create projects). Project roles are set on the project's members page."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("group", help="a group name, e.g. admin")
        parser.add_argument("--revoke", action="store_true", help="take the user out of the group")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        change = group_revoke if options["revoke"] else group_grant
        try:
            change(user=user, group=options["group"])
        except ValidationError as error:
            raise command_error(error) from None
        verb = "is no longer" if options["revoke"] else "is now"
        self.stdout.write(f"{user.username} {verb} in the {options['group']} group.")
