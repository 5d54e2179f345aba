"""Hand-written SQL for the annotation queue's hot path, the same text on PostgreSQL and SQLite.

Why not the ORM there: every `tasks/next` and submit runs about a dozen statements, and
building and compiling each through the ORM cost more CPU than Postgres spent running
it (bench/RESULTS.md, "50 annotators at once"). These statements are fixed strings with
parameters; what differs between the two databases is spelled by the helpers below.
The models still own the schema: table names come from their ``_meta``.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Annotation, AnnotatorQueue, Comparison, Judgment, Membership, Objective, Project, Task, Webhook


def _table(model) -> str:
    return '"%s"' % model._meta.db_table


ANNOTATION = _table(Annotation)
COMPARISON = _table(Comparison)
JUDGMENT = _table(Judgment)
MEMBERSHIP = _table(Membership)
OBJECTIVE = _table(Objective)
PROJECT = _table(Project)
QUEUE = _table(AnnotatorQueue)
TASK = _table(Task)
WEBHOOK = _table(Webhook)


def one(sql: str, params: Sequence = ()) -> tuple | None:
    """The first row of a query, or None."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def rows(sql: str, params: Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def run(sql: str, params: Sequence = ()) -> int:
    """Execute a statement; returns the rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# A statement and its parameters.
Statement = tuple[str, Sequence]
# Where a statement sent with ``write_together`` names the id of the row that ``first`` inserted.
NEW_ID = "{new_id}"


def write_together(*statements: Statement, first: Statement | None = None) -> int | None:
    """Run ``first`` (an ``INSERT ... RETURNING id``, if given), then ``statements``, which may name the
    new row's id as ``{new_id}``; returns that id.

    On PostgreSQL all of them are one statement, one round trip: the others become data-modifying
    ``WITH`` items. Such items run in no set order against one snapshot, so: no two of them may change
    the same row, none may read what another writes, and at most one may lock a row this transaction
    does not hold yet (two new locks taken in no set order could meet another transaction taking them
    in the other order: a deadlock). On SQLite they run one after the other, in the order given.
    """
    if connection.vendor != "postgresql":
        new_id = one(*first)[0] if first else None
        for text, params in statements:
            run(text.replace(NEW_ID, str(int(new_id))) if new_id is not None else text, params)
        return new_id
    items = [f"new AS ({first[0]})"] if first else []
    params = list(first[1]) if first else []
    body = statements if first else statements[:-1]
    for number, (text, values) in enumerate(body):
        items.append(f"w{number} AS ({text.replace(NEW_ID, '(SELECT id FROM new)')})")
        params += values
    main = ("SELECT id FROM new", []) if first else statements[-1]
    statement = (f"WITH {', '.join(items)} " if items else "") + main[0]
    row = one(statement, [*params, *main[1]]) if first else run(statement, [*params, *main[1]])
    return row[0] if first else None


def placeholders(values: Sequence) -> str:
    """``%s, %s, ...`` for an ``IN (...)`` list of these values."""
    return ", ".join(["%s"] * len(values))


def literal(*values: str) -> str:
    """Constants of the code (choice values such as a task's status) written into a statement's text.

    Not passed as parameters: Postgres may run a prepared statement with a generic plan, made
    without the parameters' values, and such a plan cannot use a partial index whose condition
    names a value (``status = 'leased'``) — it scanned the whole task table instead.
    """
    if not all(value.isidentifier() for value in values):
        raise ValueError(f"not a constant of the code: {values!r}")
    return ", ".join(f"'{value}'" for value in values)


def string_agg(expression: str) -> str:
    """An aggregate joining ``expression`` over the rows with commas (string_agg; group_concat on SQLite)."""
    return f"{'group_concat' if connection.vendor == 'sqlite' else 'string_agg'}({expression}, ',')"


def json_rows(*expressions: str) -> str:
    """An aggregate of the rows into a JSON list of ``[expression, ...]`` lists, in no set order."""
    if connection.vendor == "sqlite":
        return f"json_group_array(json_array({', '.join(expressions)}))"
    return f"json_agg(json_build_array({', '.join(expressions)}))"


# One objective in objective_ids(): keys are slugs, so neither ':' nor ',' occurs in them.
_OBJECTIVE_ITEM = "o.id || ':' || o.key"


def objective_ids(project_id: str) -> str:
    """A subquery giving the objectives of the project whose id is the expression ``project_id``, as text for
    `objective_ids_of` (a submit needs them; reading them in a statement it makes anyway saves a round trip)."""
    return f"(SELECT {string_agg(_OBJECTIVE_ITEM)} FROM {OBJECTIVE} o WHERE o.project_id = {project_id})"


def objective_ids_of(value: str | None) -> dict[str, int]:
    """``{key: id}`` from what the `objective_ids` subquery gave."""
    return {key: int(pk) for pk, key in (item.split(":", 1) for item in (value or "").split(",")) if key}


def random_fraction() -> str:
    """An expression drawing a random number in [0, 1) per row (SQLite's random() is a 64-bit integer)."""
    if connection.vendor == "sqlite":
        return "(abs(random()) % 1000000000) / 1000000000.0"
    return "random()"


def lock_clause(*, of: str = "", skip_locked: bool = False) -> str:
    """A row-lock suffix for a SELECT, empty on SQLite.

    SQLite has no row locks: there every writing transaction starts with ``BEGIN
    IMMEDIATE`` (settings), which holds the database's one write lock, so the rows read
    cannot change until commit.
    """
    if not connection.features.has_select_for_update:
        return ""
    return " FOR UPDATE" + (f" OF {of}" if of else "") + (" SKIP LOCKED" if skip_locked else "")


def when(value: datetime):
    """A datetime as this database's driver takes it (SQLite stores naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def datetime_of(value) -> datetime:
    """A datetime column read by hand, as the ORM would return it (aware; SQLite gives naive UTC text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return timezone.make_aware(value, dt_timezone.utc) if timezone.is_naive(value) else value


def json_value(value):
    """A JSON column's parameter, adapted for this database as the ORM would."""
    return connection.ops.adapt_json_value(value, None)


def json_of(value):
    """A JSON column read by hand: Django has both drivers return JSON columns as text."""
    return json.loads(value) if isinstance(value, str) else value
