"""Domain models of morm; see DESIGN.md "Domain"."""

from .annotation import Annotation, Choice, Judgment, signed_score
from .comparison import Comparison, ImportBatch
from .project import Membership, Objective, Project, Role
from .runs import MetricPoint, RewardModelRun, RunStatus
from .snapshot import Snapshot, SnapshotFormat, SnapshotStatus
from .task import Task, TaskStatus

__all__ = [
    "Annotation",
    "Choice",
    "Comparison",
    "ImportBatch",
    "Judgment",
    "Membership",
    "MetricPoint",
    "Objective",
    "Project",
    "RewardModelRun",
    "Role",
    "RunStatus",
    "Snapshot",
    "SnapshotFormat",
    "SnapshotStatus",
    "Task",
    "TaskStatus",
    "signed_score",
]
