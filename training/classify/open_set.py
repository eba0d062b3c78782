"""Open-set recognition: say "not confident" for actions the model never saw.

Softmax scores alone do not separate unseen actions (they still get 0.45-0.7 here, in-class
clips as low as 0.5). So the exported model also outputs how far the clip's embedding (for a
pretrained encoder, its frozen ImageNet features, unit length) lies from the nearest training
class: the Mahalanobis distance to the class mean under the covariance the classes share (shrunk
towards a scaled identity by Ledoit-Wolf, as 1280 dimensions outnumber the training clips), per
dimension. A clip is confident when it lies inside what validation saw on both scores: distance
at most the 97.5th percentile of the in-class *validation* distances, and top-1 probability at
least their 2.5th percentile. Each threshold alone gives up 2.5 % of known clips; together they
catch unseen actions that look like a known scene but leave the classifier torn, and the
reverse. Chosen by `python -m training open-set-study` (each class left out in turn): 76 % of a
left-out class flagged, against 68 % for the cosine distance to the nearest class centroid.
The export estimates both quantiles on the validation clips; `python -m training open-set-cv`
estimates them again on every training + validation clip scored out of fold (the default's).

    wrapped = OpenSetModel(model, class_distance(embeddings, targets))
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
    "confident when the Mahalanobis distance (shared covariance, Ledoit-Wolf shrinkage, per "
    "dimension) of the unit-length clip embedding to the nearest training-class mean is at most "
    f"its {THRESHOLD_QUANTILE:.1%} quantile over in-class validation clips and the top-1 "
    f"probability at least its {PROBABILITY_QUANTILE:.1%} quantile there"
)


class ClassDistance(nn.Module):
    """Embeddings (B, D) -> distance to the nearest class (B,): Mahalanobis, per dimension.

    The shrunk covariance is a scaled identity plus at most one direction per training clip, so
    its inverse is kept as that scale and those directions, not as a D x D matrix (6.5 MB in the
    ONNX for D = 1280): r C^-1 r = |r|^2 / a - sum_j w_j (v_j . r)^2.
    """

    def __init__(
        self, means: torch.Tensor, inverse_scale: float, basis: torch.Tensor, weights: torch.Tensor
    ) -> None:
        super().__init__()
        self.register_buffer("means", means)  # (K, D)
        self.register_buffer("inverse_scale", torch.tensor(inverse_scale))  # 1 / a
        self.register_buffer("basis", basis)  # (R, D): the directions v_j
        self.register_buffer("weights", weights)  # (R,): 1 / a - 1 / e_j

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # The buffers' shapes depend on the clips it was fitted on: take the saved ones.
        for name in ("means", "basis", "weights"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        offsets = F.normalize(embedding, dim=1)[:, None, :] - self.means[None]  # (B, K, D)
        along = offsets @ self.basis.T  # (B, K, R)
        squared = (offsets**2).sum(-1) * self.inverse_scale - (along**2 * self.weights).sum(-1)
        per_dimension = squared.clamp(min=0) / self.means.shape[1]
        return per_dimension.min(dim=1).values.sqrt()


class OpenSetModel(nn.Module):
    """A classifier with `embed` / `classify` plus its ClassDistance -> (logits, distance)."""

    def __init__(self, model: nn.Module, distance: ClassDistance) -> None:
        super().__init__()
        self.model = model
        self.distance = distance

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self.model, "cascade"):  # answers some clips from a cheaper branch alone
            return self.model.cascade(clip, self.distance)
        logits, embedding = logits_and_ood_embedding(self.model, clip)  # (B, K), (B, D)
        return logits, self.distance(embedding)


def ledoit_wolf(centred: torch.Tensor) -> torch.Tensor:
    """Covariance of centred rows, shrunk towards a scaled identity as far as Ledoit and Wolf's
    (2004) estimate of the optimal weight says (scikit-learn's `LedoitWolf`, in torch)."""
    n, p = centred.shape
    sample = centred.T @ centred / n
    scale = torch.trace(sample) / p
    identity = torch.eye(p, dtype=centred.dtype)
    spread_of_target = ((sample - scale * identity) ** 2).sum() / p
    if scale == 0 or spread_of_target == 0:  # one clip a class, or all alike: the identity
        return identity * (scale if scale > 0 else 1.0)
    squared_norms = (centred**2).sum(1)
    spread_of_sample = (
        (squared_norms**2).sum()
        - 2 * torch.einsum("ij,jk,ik->", centred, sample, centred)
        + n * (sample**2).sum()
    ) / (n**2 * p)
    shrinkage = torch.clamp(spread_of_sample / spread_of_target, max=1.0)
    return shrinkage * scale * identity + (1 - shrinkage) * sample


def class_distance(embedded: torch.Tensor, targets: list[int]) -> ClassDistance:
    """The distance to the classes of unit-length training embeddings: the classes that have
    clips only, so a class without any is never the nearest."""
    x = F.normalize(embedded.double(), dim=1)
    y = torch.as_tensor(targets)
    classes = y.unique()  # sorted
    means = torch.stack([x[y == k].mean(0) for k in classes])
    eigenvalues, vectors = torch.linalg.eigh(ledoit_wolf(x - means[torch.searchsorted(classes, y)]))
    scale = eigenvalues.min()  # the shrinkage target's: every direction the clips do not span
    spanned = eigenvalues > scale * (1 + 1e-6)
    weights = 1 / scale - 1 / eigenvalues[spanned]
    return ClassDistance(
        means.float(), float(1 / scale), vectors[:, spanned].T.float(), weights.float()
    )


def empty_class_distance(dim: int = 1280) -> ClassDistance:
    """A placeholder of the right width, to be fitted or loaded: one class at the origin."""
    return ClassDistance(torch.zeros(1, dim), 1.0, torch.zeros(0, dim), torch.zeros(0))


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
