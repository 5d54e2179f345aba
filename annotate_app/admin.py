from django.contrib import admin

from .models import Annotation, Comparison, ImportBatch, Judgment, Membership, Objective, Project, Task


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
