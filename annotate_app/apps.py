from django.apps import AppConfig


class AnnotateAppConfig(AppConfig):
    name = "annotate_app"
    verbose_name = "morm annotation"
    default_auto_field = "django.db.models.BigAutoField"
