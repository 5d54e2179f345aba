from django.urls import path

from .views import account, comparisons, datasets, labeling, projects, runs, stats

urlpatterns = [
    path("", projects.home, name="home"),
    path("account/token/", account.account_token, name="account-token"),
    path("projects/new/", projects.project_new, name="project-new"),
    path("projects/<slug:slug>/members/", projects.project_members, name="project-members"),
    path("projects/<slug:slug>/import/", projects.project_import, name="project-import"),
    path("projects/<slug:slug>/stats/", stats.project_stats_page, name="project-stats"),
    path("projects/<slug:slug>/exports/", datasets.project_exports, name="project-exports"),
    path("projects/<slug:slug>/comparisons/", comparisons.comparison_list, name="comparison-list"),
    path("projects/<slug:slug>/comparisons/<int:comparison_id>/", comparisons.comparison_detail,
         name="comparison-detail"),
    path("projects/<slug:slug>/gold/", datasets.project_gold, name="project-gold"),
    path("projects/<slug:slug>/gold/<int:comparison_id>/remove/", datasets.project_gold_remove,
         name="project-gold-remove"),
    path("projects/<slug:slug>/dashboard/", runs.dashboard, name="dashboard"),
    path("projects/<slug:slug>/reward-runs/compare/", runs.reward_runs_compare, name="reward-runs-compare"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/", runs.reward_run_page, name="reward-run"),
    path("projects/<slug:slug>/reward-runs/<int:run_id>/cancel/", runs.run_cancel_view, {"kind": "reward"},
         name="reward-run-cancel"),
    path("projects/<slug:slug>/policy-runs/<int:run_id>/cancel/", runs.run_cancel_view, {"kind": "policy"},
         name="policy-run-cancel"),
    path("projects/<slug:slug>/policy-runs/start/", runs.policy_run_start, name="policy-run-start"),
    path("projects/<slug:slug>/policy-runs/compare/", runs.policy_runs_compare, name="policy-runs-compare"),
    path("projects/<slug:slug>/policy-runs/<int:run_id>/", runs.policy_run_page, name="policy-run"),
    path("projects/<slug:slug>/label/", labeling.label, name="label"),
    path("projects/<slug:slug>/tasks/<int:task_id>/submit/", labeling.label_submit, name="label-submit"),
    path("projects/<slug:slug>/tasks/<int:task_id>/skip/", labeling.label_skip, name="label-skip"),
]
