from django.apps import AppConfig


class RmWorkerConfig(AppConfig):
    name = "rm_worker"
    verbose_name = "morm training worker"
