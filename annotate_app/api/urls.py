from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import (
    annotation_views,
    auth_views,
    bundle_views,
    dataset_views,
    errors,
    generation_views,
    round_views,
    run_views,
    stats_views,
    views,
    webhook_views,
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("auth/token/", auth_views.TokenObtain.as_view(), name="api-token"),
    path("me", views.CurrentUser.as_view(), name="api-me"),
    path("projects/", views.ProjectListCreate.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", views.ProjectDetail.as_view(), name="api-project"),
    path("projects/<slug:slug>/members/", views.ProjectMembers.as_view(), name="api-project-members"),
    path("projects/<slug:slug>/comparisons/import", views.ComparisonImport.as_view(), name="api-import"),
    path("projects/<slug:slug>/imports/", views.ImportBatchList.as_view(), name="api-import-batches"),
    path("projects/<slug:slug>/stats", stats_views.ProjectStats.as_view(), name="api-project-stats"),
    path("projects/<slug:slug>/snapshots/", dataset_views.SnapshotListCreate.as_view(), name="api-snapshots"),
    path("projects/<slug:slug>/snapshots/<int:snapshot_id>/", dataset_views.SnapshotDetail.as_view(),
         name="api-snapshot"),
    path("projects/<slug:slug>/snapshots/<int:snapshot_id>/download", dataset_views.SnapshotDownload.as_view(),
         name="api-snapshot-download"),
    path("projects/<slug:slug>/comparisons/<int:comparison_id>/gold", dataset_views.ComparisonGold.as_view(),
         name="api-comparison-gold"),
    path("projects/<slug:slug>/reward-runs/", run_views.RewardRunListCreate.as_view(), name="api-reward-runs"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/", run_views.RewardRunDetail.as_view(),
         name="api-reward-run"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/metrics", run_views.RunMetrics.as_view(),
         name="api-reward-run-metrics"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/cancel", run_views.RunCancel.as_view(),
         name="api-reward-run-cancel"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/report", run_views.RewardRunReport.as_view(),
         name="api-reward-run-report"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/bundle", bundle_views.RunBundle.as_view(),
         name="api-reward-run-bundle"),
    path("projects/<slug:slug>/policy-runs/", run_views.PolicyRunListCreate.as_view(), name="api-policy-runs"),
    path("projects/<slug:slug>/policy-sweeps/", run_views.PolicySweepListCreate.as_view(), name="api-policy-sweeps"),
    path("projects/<slug:slug>/policy-sweeps/<int:sweep_id>/", run_views.PolicySweepDetail.as_view(),
         name="api-policy-sweep"),
    path("projects/<slug:slug>/policy-runs/<int:run_id>/", run_views.PolicyRunDetail.as_view(),
         name="api-policy-run"),
    path("projects/<slug:slug>/policy-runs/<int:run_id>/metrics", run_views.PolicyRunMetrics.as_view(),
         name="api-policy-run-metrics"),
    path("projects/<slug:slug>/policy-runs/<int:run_id>/samples", run_views.PolicyRunSamples.as_view(),
         name="api-policy-run-samples"),
    path("projects/<slug:slug>/policy-runs/<int:run_id>/cancel", run_views.PolicyRunCancel.as_view(),
         name="api-policy-run-cancel"),
    path("projects/<slug:slug>/webhooks/", webhook_views.WebhookListCreate.as_view(), name="api-webhooks"),
    path("projects/<slug:slug>/webhooks/<int:webhook_id>/", webhook_views.WebhookDetail.as_view(), name="api-webhook"),
    path("projects/<slug:slug>/webhooks/<int:webhook_id>/deliveries/", webhook_views.WebhookDeliveryList.as_view(),
         name="api-webhook-deliveries"),
    path("projects/<slug:slug>/generations/", generation_views.GenerationListCreate.as_view(), name="api-generations"),
    path("projects/<slug:slug>/generations/<int:generation_id>/", generation_views.GenerationDetail.as_view(),
         name="api-generation"),
    path("projects/<slug:slug>/generations/<int:generation_id>/cancel", generation_views.GenerationCancel.as_view(),
         name="api-generation-cancel"),
    path("projects/<slug:slug>/rounds/", round_views.RoundListCreate.as_view(), name="api-rounds"),
    path("projects/<slug:slug>/tasks/next", views.TaskNext.as_view(), name="api-task-next"),
    path("tasks/<int:task_id>/submit", views.TaskSubmit.as_view(), name="api-task-submit"),
    path("tasks/<int:task_id>/skip", views.TaskSkip.as_view(), name="api-task-skip"),
    path("annotations/<int:annotation_id>", annotation_views.OwnAnnotationDetail.as_view(), name="api-annotation"),
]


def with_slash_twins(patterns):
    """Each route also answers with (or without) its trailing slash: ``tasks/next`` and ``tasks/next/``
    are one endpoint, so a client never meets a redirect or a 404 for a slash.

    The twins have no name and come after the routes as written; the schema leaves them out
    (``schema.drop_slash_twins``).
    """
    twins = []
    for pattern in patterns:
        route = str(pattern.pattern)
        twins.append(path(route[:-1] if route.endswith("/") else f"{route}/", pattern.callback, pattern.default_args))
    return patterns + twins


urlpatterns = with_slash_twins(urlpatterns) + [
    # Last: anything else under /api/v1/ (a non-numeric id, an unknown path) is a JSON 404.
    re_path(r"", errors.UnknownPath.as_view()),
]
