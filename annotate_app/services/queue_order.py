"""The order in which a project's open comparisons are handed out (``Project.queue_order``).

The queue hands out the first open comparison by ``(queue_rank, id)`` (services.queue), so an order is a
rank per comparison, written by a worker (``rm_worker.rank_queue``) in short transactions, never by a
request: ``import`` ranks every comparison 0 (import order, by id), ``random`` a random number in [0, 1),
``uncertain`` the smallest normalized margin of ``queue_reward_run``'s heads (0 until scored, so new
comparisons come first). Each change of order starts a ranking with a new id; a worker still ranking under
an older id stops at its next batch. After every batch of ranks the annotators' cursors go back to the start
(services.queue: a cursor only saves walking), so a new rank takes effect at once.
"""

import random
import uuid

from django.db import connection, transaction
from django.utils import timezone

from .. import sql
from ..models import Comparison, Project, QueueOrder
from .dispatch import queue_rank_enqueue

# Comparisons re-ranked per transaction: each holds its rows' locks only that long, and a lease skips a
# locked row (SKIP LOCKED) rather than wait.
RANK_CHUNK = 2000


def queue_order_changed(*, project: Project) -> None:
    """Start putting the project's queue in its current order (after commit, on the worker)."""
    ranking = {"id": uuid.uuid4().hex, "order": project.queue_order, "run": project.queue_reward_run_id,
               "ranked": 0, "started_at": timezone.now().isoformat(), "finished_at": None}
    Project.objects.filter(pk=project.pk).update(queue_ranking=ranking)
    project.queue_ranking = ranking
    queue_rank_enqueue(project, ranking["id"], 0)


def comparisons_ranked_on_import(*, project: Project, comparisons: list[Comparison]) -> None:
    """Give new comparisons (not saved yet) the rank their project's order wants: a random one in random order;
    0 in import order and, until scored, in uncertain order."""
    if project.queue_order == QueueOrder.RANDOM:
        for comparison in comparisons:
            comparison.queue_rank = random.random()


def comparisons_imported(*, project: Project, first_id: int) -> None:
    """After an import into a project in uncertain order: have the worker score the new comparisons (ids from
    ``first_id``) under the project's current ranking."""
    ranking = project.queue_ranking or {}
    if project.queue_order == QueueOrder.UNCERTAIN and ranking.get("id"):
        queue_rank_enqueue(project, ranking["id"], first_id)


def ranking_current(project_id: int, ranking_id: str) -> Project | None:
    """The project if ``ranking_id`` is still its ranking (else a later change of order took over)."""
    project = Project.objects.filter(pk=project_id).first()
    return project if project is not None and (project.queue_ranking or {}).get("id") == ranking_id else None


def queue_ranks_fill(*, project: Project) -> int:
    """Rank every comparison of the project for ``import`` (0), ``random`` (random) or ``uncertain`` (0, until
    scored), a chunk per transaction; returns how many. Then the cursors go back to the start."""
    rank = sql.random_fraction() if project.queue_order == QueueOrder.RANDOM else "0"
    done, after = 0, 0
    while True:
        with transaction.atomic():
            ids = [pk for (pk,) in sql.rows(
                f"SELECT id FROM {sql.COMPARISON} WHERE project_id = %s AND id > %s ORDER BY id LIMIT %s",
                [project.pk, after, RANK_CHUNK])]
            if not ids:
                break
            sql.run(f"UPDATE {sql.COMPARISON} SET queue_rank = {rank} WHERE project_id = %s AND id >= %s"
                    " AND id <= %s", [project.pk, ids[0], ids[-1]])
        done, after = done + len(ids), ids[-1]
    cursors_restart(project=project)
    return done


def queue_ranks_set(*, project: Project, ranks: dict[int, float]) -> None:
    """Store ``{comparison id: rank}`` (the worker's scores) for comparisons of ``project``, then restart cursors."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {sql.COMPARISON} SET queue_rank = %s WHERE id = %s AND project_id = %s",
                               [(rank, pk, project.pk) for pk, rank in ranks.items()])
    cursors_restart(project=project)


def cursors_restart(*, project: Project) -> None:
    """Every annotator of the project walks the queue from its start again (after its order changed)."""
    sql.run(f'UPDATE {sql.QUEUE} SET cursor_rank = 0, "cursor" = 0 WHERE project_id = %s', [project.pk])


def queue_ranking_progress(*, project: Project, ranking_id: str, ranked: int, finished: bool) -> None:
    """Record how far the ranking ``ranking_id`` got (shown on the settings page), unless a newer one started."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().filter(pk=project.pk).first()
        ranking = dict(locked.queue_ranking or {}) if locked else {}
        if ranking.get("id") != ranking_id:
            return
        ranking["ranked"] = ranked
        if finished:
            ranking["finished_at"] = timezone.now().isoformat()
        Project.objects.filter(pk=project.pk).update(queue_ranking=ranking)
