"""Open-set recognition: say "not confident" for actions the model never saw.

Softmax scores alone do not separate unseen actions (they still get 0.45-0.7 here, in-class
clips as low as 0.5). So the exported model also outputs the cosine distance of the clip's
embedding (for a pretrained encoder, its frozen ImageNet features) to the nearest training-class
centroid. A clip is confident when it lies inside what validation saw on both scores: distance at
most the 97.5th percentile of the in-class *validation* distances, and top-1 probability at least
their 2.5th percentile. Each threshold alone gives up 2.5 % of known clips; together they catch
unseen actions that look like a known scene but leave the classifier torn, and the reverse.

    wrapped = OpenSetModel(model, class_centroids(embeddings, targets, num_classes))
    logits, ood_distance = wrapped(clips)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

THRESHOLD_QUANTILE = 0.975
PROBABILITY_QUANTILE = 0.025
METHOD = (
    "confident when the cosine distance of the clip embedding to the nearest training-class "
    f"centroid is at most its {THRESHOLD_QUANTILE:.1%} quantile over in-class validation clips "
    f"and the top-1 probability at least its {PROBABILITY_QUANTILE:.1%} quantile there"
)


class OpenSetModel(nn.Module):
    """A classifier with `embed` / `classify` plus its class centroids -> (logits, distance)."""

    def __init__(self, model: nn.Module, centroids: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("centroids", F.normalize(centroids, dim=1))  # (K, D)

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = logits_and_ood_embedding(self.model, clip)  # (B, K), (B, D)
        similarity = F.normalize(embedding, dim=1) @ self.centroids.T  # (B, K)
        return logits, 1.0 - similarity.max(dim=1).values


def logits_and_ood_embedding(
    model: nn.Module, clip: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A model's own `logits_and_ood_embedding` where it has one, else its `embed` output."""
    if hasattr(model, "logits_and_ood_embedding"):
        return model.logits_and_ood_embedding(clip)
    embedding = model.embed(clip)
    return model.classify(embedding), embedding


@torch.no_grad()
def embeddings(model: nn.Module, clips: list[torch.Tensor]) -> torch.Tensor:
    """The embeddings the open-set distance is measured on."""
    model.eval()
    return torch.cat([logits_and_ood_embedding(model, clip[None])[1] for clip in clips])


def class_centroids(embedded: torch.Tensor, targets: list[int], num_classes: int) -> torch.Tensor:
    normalised = F.normalize(embedded, dim=1)
    index = torch.tensor(targets)
    empty = torch.zeros(normalised.shape[1])  # a class without clips is never the nearest
    return torch.stack(
        [
            normalised[index == k].mean(0) if (index == k).any() else empty
            for k in range(num_classes)
        ]
    )


def choose_thresholds(val_distances: np.ndarray, val_top1: np.ndarray) -> tuple[float, float]:
    """(distance threshold, minimum top-1 probability) from in-class validation clips."""
    return (
        float(np.quantile(val_distances, THRESHOLD_QUANTILE)),
        float(np.quantile(val_top1, PROBABILITY_QUANTILE)),
    )


def is_confident(
    distances: np.ndarray, top1: np.ndarray, threshold: float, min_top1: float
) -> np.ndarray:
    """The rule the service applies (service/inference/classifier.py), over many clips."""
    return (distances <= threshold) & (top1 >= min_top1)
