"""The signed-in user's own account: their API token."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ..services.accounts import token_expires_at, token_is_expired, token_of, token_rotate


@login_required
@require_http_methods(["GET", "POST"])
def account_token(request):
    """Show the user's API token and when it expires; POST replaces it with a new one."""
    if request.method == "POST":
        token_rotate(user=request.user)
        messages.success(request, "New API token made; the old one no longer works.")
        return redirect("account-token")
    token = token_of(request.user)
    context = {"token": token}
    if token is not None:
        context.update(expires_at=token_expires_at(token), expired=token_is_expired(token))
    return render(request, "annotate_app/account_token.html", context)
