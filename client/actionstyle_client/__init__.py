"""Client for the actionstyle service: `from actionstyle_client import Client`, or `actionstyle`.

with Client() as client:          # ACTIONSTYLE_URL / ACTIONSTYLE_API_KEY, or arguments
    print(client.classify("clip.mp4").top_label)
    client.teach("wave", clips={"wave": [...], "other": [...]}).wait().classifier()
"""

from actionstyle_client.client import Classifiers, Client, Job, Jobs, TeachJob
from actionstyle_client.errors import (
    ActionStyleError,
    ApiError,
    Conflict,
    InputRejected,
    JobFailed,
    JobTimeout,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    ServiceUnreachable,
    Unauthorized,
)
from actionstyle_client.models import (
    ClassifierEntry,
    ClassifyResult,
    JobState,
    JobStatus,
    ModelsInfo,
    Prediction,
    Segment,
    StyleSummary,
    TeachJobCreated,
)
from actionstyle_client.retry import RetryPolicy

__all__ = [
    "ActionStyleError",
    "ApiError",
    "ClassifierEntry",
    "Classifiers",
    "ClassifyResult",
    "Client",
    "Conflict",
    "InputRejected",
    "Job",
    "JobFailed",
    "JobState",
    "JobStatus",
    "JobTimeout",
    "Jobs",
    "ModelsInfo",
    "NotFound",
    "Prediction",
    "RateLimited",
    "RetryPolicy",
    "Segment",
    "ServiceUnavailable",
    "ServiceUnreachable",
    "StyleSummary",
    "TeachJob",
    "TeachJobCreated",
    "Unauthorized",
]
