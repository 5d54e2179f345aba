from django.urls import path

from .views import labeling, projects

urlpatterns = [
    path("", projects.home, name="home"),
    path("projects/new/", projects.project_new, name="project-new"),
    path("projects/<slug:slug>/members/", projects.project_members, name="project-members"),
    path("projects/<slug:slug>/import/", projects.project_import, name="project-import"),
    path("projects/<slug:slug>/label/", labeling.label, name="label"),
    path("projects/<slug:slug>/tasks/<int:task_id>/submit/", labeling.label_submit, name="label-submit"),
    path("projects/<slug:slug>/tasks/<int:task_id>/skip/", labeling.label_skip, name="label-skip"),
]
