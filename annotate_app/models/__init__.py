"""Domain models of morm; see DESIGN.md "Domain"."""

from .annotation import Annotation, AnnotationRevision, Choice, Judgment, signed_score
from .annotation_task import AnnotatorQueue, Task, TaskStatus
from .comparison import Comparison, ImportBatch
from .generations import Generation
from .project import Membership, Objective, Project, QueueOrder, Role
from .rounds import Round, RoundTrigger
from .runs import MetricPoint, PolicyRun, PolicySample, PolicySweep, RewardModelRun, RunStatus, TrainingRun
from .scores import ComparisonScore
from .snapshot import Snapshot, SnapshotFormat, SnapshotStatus
from .webhooks import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent

__all__ = [
    "Annotation",
    "AnnotationRevision",
    "AnnotatorQueue",
    "Choice",
    "Comparison",
    "ComparisonScore",
    "DeliveryStatus",
    "Generation",
    "ImportBatch",
    "Judgment",
    "Membership",
    "MetricPoint",
    "Objective",
    "PolicyRun",
    "PolicySample",
    "PolicySweep",
    "Project",
    "QueueOrder",
    "RewardModelRun",
    "Role",
    "Round",
    "RoundTrigger",
    "RunStatus",
    "Snapshot",
    "SnapshotFormat",
    "SnapshotStatus",
    "Task",
    "TaskStatus",
    "TrainingRun",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
    "signed_score",
]
