from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView


class FaviconRedirect(RedirectView):
    """``/favicon.ico``, which browsers ask for on pages that link no icon (the admin's, DRF's), is our SVG."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("favicon.svg")


urlpatterns = [
    path("favicon.ico", FaviconRedirect.as_view()),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("annotate_app.api.urls")),
    path("", include("annotate_app.urls")),
]

# JSON {"detail": ...} under /api/, Django's pages elsewhere.
handler400 = "annotate_app.api.errors.bad_request"
handler403 = "annotate_app.api.errors.permission_denied"
handler404 = "annotate_app.api.errors.page_not_found"
handler500 = "annotate_app.api.errors.server_error"
