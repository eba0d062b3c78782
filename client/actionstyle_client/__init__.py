"""Client for the actionstyle service: `from actionstyle_client import Client`, or `actionstyle`.

with Client() as client:          # ACTIONSTYLE_URL / ACTIONSTYLE_API_KEY, or arguments
    print(client.classify("clip.mp4").top_label)
"""

from actionstyle_client.client import Client, Job, Jobs
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
)
from actionstyle_client.retry import RetryPolicy

__all__ = [
    "ActionStyleError",
    "ApiError",
    "ClassifierEntry",
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
    "Unauthorized",
]
