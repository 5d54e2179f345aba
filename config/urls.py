from django.contrib import admin
from django.urls import include, path

urlpatterns = [
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
