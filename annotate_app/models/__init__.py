"""Domain models of morm; see DESIGN.md "Domain"."""

from .annotation import Annotation, Choice, Judgment
from .comparison import Comparison, ImportBatch
from .project import Membership, Objective, Project, Role
from .task import Task, TaskStatus

__all__ = [
    "Annotation",
    "Choice",
    "Comparison",
    "ImportBatch",
    "Judgment",
    "Membership",
    "Objective",
    "Project",
    "Role",
    "Task",
    "TaskStatus",
]
