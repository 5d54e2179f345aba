"""The comparison browser: one project's comparisons filtered, sorted and read a page at a time.

Pages are keyset pages: each asks for the rows after (or before) the last one shown, by the sort
key and then id, so page 20,000 of a million comparisons costs what page 1 does; there is no OFFSET
and no count of the matches. The sort keys are served by the indexes ``comparison_project_id`` and
``comparison_project_submitted`` (migration 0013): the database walks one of them from the cursor and
stops after a page of matching rows.

What a filter costs at 1M comparisons, per page: the queue counters (``submitted_count``, ``is_gold``)
are columns of the row, so labeled / unlabeled / complete / gold check each row walked.
Has-imported-labels, objectives-in-conflict and agreement-below are EXISTS subqueries on the row's
annotations (a few index probes) for each row walked. Text search is a case-insensitive substring
match on prompt and both responses, which no index serves (``%word%``). A filter whose matches are
rare would walk the whole project to fill a page (a word in one comparison of 1M: 3-10 s on
Postgres), so a filtered page looks at no more than ``SCAN_WINDOW`` comparisons from its cursor and
says how far it looked; its next page goes on from there. Every page is then bounded. Gold items
are exempt (their partial index holds only them). Full-text search (a GIN index) is not built.
"""

import json
import math
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.fields.tuple_lookups import (
    Tuple,
    TupleGreaterThan,
    TupleGreaterThanOrEqual,
    TupleLessThan,
    TupleLessThanOrEqual,
)

from ..models import Annotation, Choice, Comparison, ComparisonScore, Judgment, Project, RewardModelRun, Role

PER_PAGE = 50
# At most this many comparisons are looked at for one filtered page (see comparisons_page).
SCAN_WINDOW = 5000
# Sort name -> the column sorted on before id; a leading "-" sorts both descending.
SORTS = {"id": "id", "-id": "id", "submitted": "submitted_count", "-submitted": "submitted_count"}
STATUSES = ("labeled", "unlabeled", "complete")


@dataclass(frozen=True)
class ComparisonFilters:
    """What the browser lists. Empty or None fields do not filter."""

    status: str = ""  # labeled: ≥1 submitted annotation; unlabeled: none; complete: overlap_k of them
    agreement_below: float | None = None  # some objective's majority share of human judgments below this
    conflict: bool = False  # one annotation prefers A on one objective and B on another
    gold: bool = False
    imported: bool = False  # has labels from an import
    search: str = ""  # substring of the prompt or either response, any case
    sort: str = "id"

    @property
    def narrows(self) -> bool:
        """Whether any filter is set (the sort alone lists every comparison)."""
        return bool(self.status or self.agreement_below is not None or self.conflict or self.gold
                    or self.imported or self.search)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, going back, before) the row with this sort value and id."""

    value: int
    id: int
    before: bool = False

    def encode(self) -> str:
        return f"{self.value}.{self.id}"

    @classmethod
    def decode(cls, text: str, *, before: bool = False) -> "Cursor":
        """The cursor written by ``encode``; ValueError for anything else."""
        value, _, row = text.partition(".")
        # Both parts are 64-bit at most: SQLite cannot even compare a larger number.
        if not all(part.isdecimal() and len(part) <= 19 and int(part) < 2**63 for part in (value, row)):
            raise ValueError(f"not a page cursor: {text!r}")
        return cls(int(value), int(row), before)


@dataclass(frozen=True)
class ComparisonPage:
    rows: list[Comparison]
    next: Cursor | None  # the cursor of the following page, None on the last
    previous: Cursor | None  # the cursor of the page before, None on the first
    agreement: dict[int, float] = field(default_factory=dict)  # comparison id -> lowest majority share
    # The id of the last comparison looked at when the scan window ran out before a page was filled.
    scanned_to: int | None = None


def comparisons_filtered(project: Project, filters: ComparisonFilters) -> QuerySet[Comparison]:
    """The project's comparisons that pass ``filters``, unordered."""
    rows = Comparison.objects.filter(project=project)
    if filters.status == "labeled":
        rows = rows.filter(submitted_count__gt=0)
    elif filters.status == "unlabeled":
        rows = rows.filter(submitted_count=0)
    elif filters.status == "complete":
        rows = rows.filter(submitted_count__gte=project.overlap_k)
    if filters.gold:
        rows = rows.filter(is_gold=True)
    if filters.imported and not project.imported_label_sets:
        rows = rows.none()  # the maintained count answers without walking the project
    elif filters.imported:
        rows = rows.filter(Exists(Annotation.objects.filter(comparison=OuterRef("pk"), source__isnull=False)))
    if filters.conflict:
        # Two filter() calls on a multi-valued relation join it twice: some judgment says A, another B.
        in_conflict = Annotation.objects.filter(comparison=OuterRef("pk"), judgments__choice=Choice.A).filter(
            judgments__choice=Choice.B)
        rows = rows.filter(Exists(in_conflict))
    if filters.agreement_below is not None:
        rows = rows.filter(Exists(_objectives_agreeing_below(filters.agreement_below)))
    if filters.search:
        text = filters.search
        rows = rows.filter(Q(prompt__icontains=_as_json_text(text)) | Q(response_a__icontains=text)
                           | Q(response_b__icontains=text))
    return rows


def _as_json_text(text: str) -> str:
    """``text`` as it reads inside the prompt's stored JSON: quotes and backslashes escaped, and on SQLite
    (which keeps the JSON as Django wrote it, ASCII only) non-ASCII letters as \\u escapes."""
    return json.dumps(text, ensure_ascii=connection.vendor == "sqlite")[1:-1]


def _objectives_agreeing_below(share: float) -> QuerySet[Judgment]:
    """Per objective of the outer comparison with two or more human judgments: those whose most common choice
    (A, B or tie) is below ``share`` of them — the export's ``min_agreement`` measure."""
    counts = Judgment.objects.filter(
        annotation__comparison=OuterRef("pk"), annotation__annotator__isnull=False
    ).values("objective_id").annotate(
        n=Count("id"), a=Count("id", filter=Q(choice=Choice.A)), b=Count("id", filter=Q(choice=Choice.B)),
        tie=Count("id", filter=Q(choice=Choice.TIE)),
    )
    return counts.filter(n__gte=2, a__lt=share * F("n"), b__lt=share * F("n"), tie__lt=share * F("n"))


def comparisons_page(
    project: Project, filters: ComparisonFilters, *, cursor: Cursor | None = None, per_page: int | None = None
) -> ComparisonPage:
    """One page of ``comparisons_filtered`` in ``filters.sort`` order, starting at ``cursor`` (the first page
    when None), with each row's lowest agreement. ``per_page`` defaults to ``PER_PAGE``.

    A filtered page looks at no more than ``SCAN_WINDOW`` of the project's comparisons from its cursor: when
    fewer than a page of them match, the page holds those (``scanned_to`` says how far it looked) and its next
    cursor continues after the last one looked at. Gold items are exempt: their partial index holds only them.
    """
    per_page = per_page or PER_PAGE
    column = SORTS[filters.sort]
    # Going back walks the other way from the cursor, then the page is turned round.
    going_back = bool(cursor and cursor.before)
    walk_down = filters.sort.startswith("-") != going_back
    order = list(dict.fromkeys([f"-{column}", "-id"] if walk_down else [column, "id"]))
    after = TupleLessThan if walk_down else TupleGreaterThan
    base = Comparison.objects.filter(project=project)
    rows = comparisons_filtered(project, filters)
    if cursor is not None:
        base = base.filter(after(_keys(column), _key_of(cursor.value, cursor.id, column)))
        rows = rows.filter(after(_keys(column), _key_of(cursor.value, cursor.id, column)))
    window_end = None
    if filters.narrows and not filters.gold:
        window_end = next(iter(base.order_by(*order).values_list(column, "id")[SCAN_WINDOW - 1:SCAN_WINDOW]), None)
    if window_end is not None:
        within = TupleGreaterThanOrEqual if walk_down else TupleLessThanOrEqual
        rows = rows.filter(within(_keys(column), _key_of(*window_end, column)))
    found = list(rows.order_by(*order)[: per_page + 1])
    walked = found[:per_page]
    onward = _key_pair(walked[-1], column) if len(found) > per_page else window_end
    back = (_key_pair(walked[0], column) if walked else onward) if cursor is not None else None
    forward, backward = (back, onward) if going_back else (onward, back)
    if going_back:
        walked.reverse()
    return ComparisonPage(
        walked,
        next=Cursor(*forward) if forward else None,
        previous=Cursor(*backward, before=True) if backward else None,
        agreement=lowest_agreement([row.pk for row in walked]),
        scanned_to=window_end[1] if window_end is not None and len(found) <= per_page else None,
    )


def _keys(column: str) -> Tuple:
    return Tuple(F(column), F("id")) if column != "id" else Tuple(F("id"))


def _key_of(value: int, row_id: int, column: str) -> tuple:
    return (value, row_id) if column != "id" else (row_id,)


def _key_pair(row: Comparison, column: str) -> tuple[int, int]:
    return getattr(row, column), row.pk


def lowest_agreement(comparison_ids: list[int]) -> dict[int, float]:
    """Per comparison with an objective judged by two or more annotators: the lowest share of an objective's
    human judgments pointing its majority way. Bounded by the ids given (a page)."""
    votes: dict[tuple[int, int], list[str]] = {}
    rows = Judgment.objects.filter(
        annotation__comparison_id__in=comparison_ids, annotation__annotator__isnull=False
    ).values_list("annotation__comparison_id", "objective_id", "choice")
    for comparison_id, objective_id, choice in rows:
        votes.setdefault((comparison_id, objective_id), []).append(choice)
    lowest: dict[int, float] = {}
    for (comparison_id, _), choices in votes.items():
        if len(choices) >= 2:
            share = max(choices.count(choice) for choice in set(choices)) / len(choices)
            lowest[comparison_id] = min(share, lowest.get(comparison_id, 1.0))
    return lowest


@dataclass(frozen=True)
class JudgedBy:
    """One annotation on the detail page: who (a name, "annotator N", or the import), and its judgments."""

    who: str
    annotation: Annotation
    judgments: list[Judgment]


def comparison_annotations(comparison: Comparison, *, role: Role) -> tuple[list[JudgedBy], list[JudgedBy]]:
    """(human annotations, imported label sets) of the comparison, judgments in objective order.

    Annotators are named to project admins only; others see "annotator 1, 2, ..." in submit order.
    """
    annotations = comparison.annotations.select_related("annotator", "source").prefetch_related(
        "judgments__objective").order_by("id")
    human, imported = [], []
    for annotation in annotations:
        judgments = sorted(annotation.judgments.all(), key=lambda j: (j.objective.order, j.objective_id))
        if annotation.source_id is not None:
            source = annotation.source
            imported.append(JudgedBy(f"import {source.pk}: {source.filename or source.format}", annotation, judgments))
            continue
        who = annotation.annotator.get_username() if role == Role.ADMIN else f"annotator {len(human) + 1}"
        human.append(JudgedBy(who, annotation, judgments))
    return human, imported


@dataclass(frozen=True)
class HeadScore:
    """One head's raw rewards of a comparison's two responses (canonical orientation: A as imported)."""

    objective: str
    reward_a: float
    reward_b: float

    @property
    def p_a(self) -> float:
        """σ(r_A − r_B): the probability that A is preferred, as the model was trained to give it."""
        # The tanh form of the logistic cannot overflow for any reward gap.
        return 0.5 * (1 + math.tanh((self.reward_a - self.reward_b) / 2))

    @property
    def prefers(self) -> str:
        """"A", "B", or "neither" for equal rewards."""
        if self.reward_a == self.reward_b:
            return "neither"
        return "A" if self.reward_a > self.reward_b else "B"


def comparison_run_scores(comparison: Comparison, run: RewardModelRun) -> list[HeadScore] | None:
    """Each head's score of ``comparison`` by ``run``, in the run's objective order; None when not scored yet."""
    stored = ComparisonScore.objects.filter(reward_run=run, comparison=comparison).first()
    if stored is None:
        return None
    # Postgres's jsonb does not keep the order keys were written in.
    order = run.config.get("objectives", [])
    heads = sorted(stored.rewards, key=lambda objective: order.index(objective) if objective in order else len(order))
    return [HeadScore(objective, stored.rewards[objective]["a"], stored.rewards[objective]["b"]) for objective in heads]
