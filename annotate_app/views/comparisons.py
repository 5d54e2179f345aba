"""The comparison browser: list, filter and open a project's comparisons; mark gold items from what is shown."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import access
from ..forms import ComparisonFilterForm, ShownGoldForm, row_id
from ..models import Comparison, Project, RewardModelRun, Role, RunStatus
from ..selectors import comparisons as selectors
from ..selectors.comparisons import Cursor, comparison_annotations, comparison_run_scores, comparisons_page
from ..services.comparison_scores import comparison_scores_request
from ..services.gold import comparison_mark_gold

RUN_CHOICES = 50  # the newest succeeded reward runs offered to score with


@login_required
@require_GET
def comparison_list(request, slug):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    form = ComparisonFilterForm(request.GET)
    context = {"project": project, "form": form, "page": None}
    if not form.is_valid():
        return render(request, "annotate_app/comparisons.html", context, status=400)
    page = comparisons_page(project, form.filters(), cursor=form.cursor())
    context.update(
        page=page,
        rows=[(row, page.agreement.get(row.pk)) for row in page.rows],
        next_url=_page_url(request, page.next),
        previous_url=_page_url(request, page.previous),
        first_url=_page_url(request, None) if form.cursor() else None,
        scan_window=selectors.SCAN_WINDOW,
    )
    return render(request, "annotate_app/comparisons.html", context)


def _page_url(request: HttpRequest, cursor: Cursor | None) -> str | None:
    """The current query string (filters, sort) pointed at the page ``cursor`` names; the first page for None."""
    query = request.GET.copy()
    query.pop("after", None)
    query.pop("before", None)
    if cursor is not None:
        query["before" if cursor.before else "after"] = cursor.encode()
    return f"?{query.urlencode()}"


@login_required
@require_http_methods(["GET", "POST"])
def comparison_detail(request, slug, comparison_id):
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    role = access.project_role(request.user, project)
    comparison = get_object_or_404(project.comparisons, pk=_comparison_id(comparison_id))
    gold_form = None
    if role == Role.ADMIN:
        initial = {f"expected_{key}": choice for key, choice in comparison.gold_expected.items()}
        data = request.POST if request.method == "POST" else None
        gold_form = ShownGoldForm(data, project=project, initial=initial)
    if request.method == "POST":
        if gold_form is None:
            raise PermissionDenied("Only project admins mark gold items.")
        if _mark_gold(request, comparison, gold_form):
            return redirect("comparison-detail", slug=slug, comparison_id=comparison.pk)
    human, imported = comparison_annotations(comparison, role=role)
    runs = project.reward_runs.filter(status=RunStatus.SUCCEEDED).order_by("-id")[:RUN_CHOICES]
    run = _picked_run(request, project)
    return render(request, "annotate_app/comparison_detail.html", {
        "project": project, "comparison": comparison, "gold_form": gold_form, "human": human,
        "imported": imported, "runs": runs, "run": run,
        "scores": comparison_run_scores(comparison, run) if run else None,
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def comparison_score(request, slug, comparison_id):
    """Queue scoring of the comparison with the posted ``run``, then back to the page showing that run."""
    project = access.project_for(request.user, slug, roles=access.DATA_ROLES)
    comparison = get_object_or_404(project.comparisons, pk=_comparison_id(comparison_id))
    run = get_object_or_404(project.reward_runs, pk=row_id(request.POST.get("run", "")) or 0)
    try:
        queued = comparison_scores_request(run=run, comparisons=[comparison])
    except ValidationError as error:
        return HttpResponseBadRequest(f"run: {' '.join(error.messages)}")
    if queued:
        messages.success(request, f"Scoring {comparison} with run {run.pk} is queued for a training worker; "
                                  "reload this page in a moment.")
    else:
        messages.info(request, f"Run {run.pk} has scored {comparison} already.")
    detail = reverse("comparison-detail", kwargs={"slug": slug, "comparison_id": comparison.pk})
    return redirect(f"{detail}?run={run.pk}")


def _comparison_id(value: int) -> int:
    # The path takes any digits; ids are 64-bit, and SQLite cannot even compare a larger number.
    found = row_id(str(value))
    if found is None:
        raise Http404("No such comparison.")
    return found


def _mark_gold(request: HttpRequest, comparison: Comparison, form: ShownGoldForm) -> bool:
    """Mark the comparison gold with the form's choices; False (errors on the form) when refused."""
    if not form.is_valid():
        return False
    try:
        comparison_mark_gold(comparison=comparison, expected=form.expected())
    except ValidationError as error:
        form.add_error(None, error.messages)
        return False
    messages.success(request, f"{comparison} is now a gold item.")
    return True


def _picked_run(request: HttpRequest, project: Project) -> RewardModelRun | None:
    """The succeeded reward run ``?run=`` names, None when none is picked; 404 for one that is not there."""
    value = request.GET.get("run")
    if not value:
        return None
    return get_object_or_404(project.reward_runs.filter(status=RunStatus.SUCCEEDED), pk=row_id(value) or 0)

