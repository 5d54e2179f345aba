from django.contrib import admin, messages
from django.utils.html import format_html_join

from .models import (
    Annotation,
    Comparison,
    Generation,
    ImportBatch,
    Judgment,
    Membership,
    MetricPoint,
    Objective,
    PolicyRun,
    PolicySample,
    Project,
    RewardModelRun,
    Round,
    Snapshot,
    Task,
)
from .selectors.stats import project_stats
from .services.runs import run_cancel


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written once by a service and never changed: listed and viewed here, nothing more."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectiveInline(admin.TabularInline):
    model = Objective
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "overlap_k", "lease_minutes", "shuffle_sides", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ObjectiveInline, MembershipInline]
    readonly_fields = ["label_quality"]

    def get_readonly_fields(self, request, obj=None):
        # The queue's counters (services.queue) are kept against the overlap fixed at creation.
        return [*self.readonly_fields, "overlap_k"] if obj is not None else self.readonly_fields

    @admin.display(description="Label quality (read-only; computed from the judgments)")
    def label_quality(self, project):
        if project.pk is None:
            return "—"
        stats = project_stats(project)
        return format_html_join(
            "",
            "<div><strong>{}</strong>: Krippendorff α {}, agreement {}, left side won {} (n={})</div>",
            (
                (o["name"], o["alpha"], o["percent_agreement"], o["position_bias"]["left_won"],
                 o["position_bias"]["n"])
                for o in stats["objectives"]
            ),
        )


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "external_id", "model_a", "model_b", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id", "response_a", "response_b"]


class JudgmentInline(admin.TabularInline):
    model = Judgment
    extra = 0


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "annotator", "source", "created_at"]
    list_filter = ["comparison__project"]
    inlines = [JudgmentInline]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "comparison", "annotator", "status", "expires_at"]
    list_filter = ["project", "status"]


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "filename", "format", "created_count", "skipped_count", "label_count"]
    readonly_fields = [f.name for f in ImportBatch._meta.fields]


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    """Snapshots are immutable: viewable here, made only by the export service."""

    list_display = ["id", "project", "format", "objective", "status", "judgments_read", "sha256", "created_by",
                    "created_at"]
    list_filter = ["project", "format", "status"]


@admin.action(description="Cancel the selected runs")
def cancel_runs(modeladmin, request, queryset):
    """Cancel through the service, as the run page does: queued runs at once, running ones between steps."""
    for run in queryset:
        run_cancel(run=run)
    modeladmin.message_user(request, f"Cancel asked for {queryset.count()} run(s).", messages.SUCCESS)


class RunAdmin(admin.ModelAdmin):
    """Runs are made by the run services (config validated against its schema, then queued) and
    changed only by their worker, so every field is read-only here; a run can be cancelled, and a
    finished one deleted."""

    list_display = ["id", "project", "status", "step", "total_steps", "created_by", "created_at", "finished_at"]
    list_filter = ["project", "status"]
    list_select_related = ["project", "created_by"]
    actions = [cancel_runs]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_finished)


@admin.register(RewardModelRun)
class RewardModelRunAdmin(RunAdmin):
    list_display = [*RunAdmin.list_display[:2], "snapshot", *RunAdmin.list_display[2:]]


@admin.register(PolicyRun)
class PolicyRunAdmin(RunAdmin):
    list_display = [*RunAdmin.list_display[:2], "reward_run", *RunAdmin.list_display[2:]]


@admin.register(Generation)
class GenerationAdmin(RunAdmin):
    list_display = [*RunAdmin.list_display[:2], "policy_run", "reward_run", *RunAdmin.list_display[2:4],
                    "created_count", "skipped_count", *RunAdmin.list_display[4:]]


@admin.register(Round)
class RoundAdmin(ReadOnlyAdmin):
    """Written by services.rounds as the loop takes each step; the Rounds page shows them."""

    list_display = ["id", "project", "number", "trigger", "reward_run", "policy_run", "generation", "created_at"]


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyAdmin):
    """Logged by the workers' metrics writer; immutable."""

    list_display = ["id", "reward_run", "policy_run", "step", "key", "value"]
    list_filter = ["key"]
    search_fields = ["key"]
    # A run logs thousands of points: the list pages without counting them all.
    show_full_result_count = False


@admin.register(PolicySample)
class PolicySampleAdmin(ReadOnlyAdmin):
    """Generations sampled during PPO; immutable."""

    list_display = ["id", "policy_run", "step", "combined"]
    show_full_result_count = False
