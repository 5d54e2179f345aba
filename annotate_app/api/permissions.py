"""Small single-purpose permission classes; project scoping itself is in ``access``."""

from rest_framework.permissions import BasePermission

from ..access import can_create_projects


class CanCreateProjects(BasePermission):
    message = "Only users in the admin group may create projects."

    def has_permission(self, request, view) -> bool:
        return request.method != "POST" or can_create_projects(request.user)
