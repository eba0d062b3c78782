"""A custom classifier's head, in numpy: softmax regression on frozen per-frame features.

A clip is described by the mean of its frames' encoder features, L2-normalised and centred on
the training clips; the head is an L2-regularised softmax regression on that. With a handful of
clips per label this is what generalises (a temporal attention head needs hundreds), and it
trains in milliseconds. Training also sees means of random halves of each clip's frames and of
its mirrored frames, so it does not learn one exact view. Accuracy is cross-validated with every
clip's views on one side of the split only; the open-set thresholds come from the same folds.

    head = fit_head(clip_features, labels_idx, num_labels)   # clip_features: [(V, T, D), ...]
    logits, distance = head.predict(frame_features)           # (B, T, D) -> (B, K), (B,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

L2 = 1e-3
STEPS = 300
LEARNING_RATE = 0.05
HALVES_PER_VIEW = 4
SEED = 0
MAX_FOLDS = 5
# The open-set rule, as the shipped models state theirs.
METHOD = (
    "confident when the cosine distance of the clip's mean encoder feature to the nearest "
    "label's centroid is at most the 97.5% quantile of the training clips' leave-one-out "
    "distances to their own label's centroid, and the top-1 probability at least the 2.5% "
    "quantile of the cross-validated top-1 probabilities of correctly classified training clips"
)


@dataclass(frozen=True)
class Head:
    weights: np.ndarray  # (D, K)
    bias: np.ndarray  # (K,)
    centre: np.ndarray  # (D,) mean of the training descriptors
    centroids: np.ndarray  # (K, D) unit-length mean feature of each label's clips

    def descriptors(self, frame_features: np.ndarray) -> np.ndarray:
        """(B, T, D) per-frame features -> (B, D) centred unit-length clip descriptors."""
        return _unit(frame_features.mean(1)) - self.centre

    def predict(self, frame_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (B, K) and the cosine distance to the nearest label's centroid (B,)."""
        logits = self.descriptors(frame_features) @ self.weights + self.bias
        similarity = _unit(frame_features.mean(1)) @ self.centroids.T
        return logits.astype(np.float32), (1.0 - similarity.max(1)).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def _training_views(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, T, D) views of one clip (as decoded, mirrored) -> descriptors of every view and of
    random halves of its frames, (n, D) unit-length."""
    views, frames = features.shape[:2]
    rows = [features.mean(1)]
    half = max(1, frames // 2)
    for _ in range(HALVES_PER_VIEW):
        picks = np.stack([rng.choice(frames, half, replace=False) for _ in range(views)])
        rows.append(np.take_along_axis(features, picks[..., None], 1).mean(1))
    return _unit(np.concatenate(rows))


def _fit_softmax(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch Adam on the mean cross-entropy + L2 / 2 |W|^2 (convex: always converges)."""
    weights, bias = np.zeros((x.shape[1], classes)), np.zeros(classes)
    onehot = np.eye(classes)[y]
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros(classes), np.zeros(classes)]
    for step in range(1, STEPS + 1):
        error = (_softmax(x @ weights + bias) - onehot) / len(x)
        grads = (x.T @ error + L2 * weights, error.sum(0))
        for i, (param, grad) in enumerate(zip((weights, bias), grads, strict=True)):
            first, second = moments[2 * i], moments[2 * i + 1]
            first *= 0.9
            first += 0.1 * grad
            second *= 0.999
            second += 0.001 * grad**2
            param -= (
                LEARNING_RATE
                * (first / (1 - 0.9**step))
                / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
            )
    return weights, bias


def fit_head(clips: list[np.ndarray], labels: np.ndarray, classes: int) -> Head:
    """Train on every clip: `clips[i]` holds clip i's (V, T, D) frame features, V views."""
    rng = np.random.default_rng(SEED)
    rows, targets = [], []
    for features, label in zip(clips, labels, strict=True):
        described = _training_views(features, rng)
        rows.append(described)
        targets += [label] * len(described)
    x = np.concatenate(rows)
    centre = x.mean(0)
    weights, bias = _fit_softmax(x - centre, np.asarray(targets), classes)
    means = _unit(np.stack([features[0].mean(0) for features in clips]))
    centroids = _unit(np.stack([means[labels == k].mean(0) for k in range(classes)]))
    return Head(weights, bias, centre, centroids)


def clip_folds(labels: np.ndarray, seed: int = SEED) -> np.ndarray:
    """A fold number per clip: each label's clips dealt round-robin (shuffled) over the folds,
    so every fold holds out some clips of every label and a clip sits in one fold only."""
    folds = min(MAX_FOLDS, int(np.bincount(labels).min()))
    rng = np.random.default_rng(seed)
    assigned = np.zeros(len(labels), int)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        assigned[members] = np.arange(len(members)) % folds
    return assigned


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    per_label: list[float]
    folds: int
    top1: np.ndarray  # out-of-fold top-1 probability of each clip
    correct: np.ndarray  # out-of-fold verdict of each clip


def cross_validate(clips: list[np.ndarray], labels: np.ndarray, classes: int) -> Evaluation:
    """Out-of-fold accuracy; a clip's frames and mirrored views never train its own fold."""
    folds = clip_folds(labels)
    predicted, top1 = np.zeros(len(labels), int), np.zeros(len(labels))
    for fold in range(folds.max() + 1):
        train = np.flatnonzero(folds != fold)
        head = fit_head([clips[i] for i in train], labels[train], classes)
        test = np.flatnonzero(folds == fold)
        logits, _ = head.predict(np.stack([clips[i][0] for i in test]))
        probabilities = _softmax(logits.astype(np.float64))
        predicted[test], top1[test] = probabilities.argmax(1), probabilities.max(1)
    correct = predicted == labels
    per_label = [float(correct[labels == k].mean()) for k in range(classes)]
    return Evaluation(float(correct.mean()), per_label, int(folds.max() + 1), top1, correct)


def open_set_thresholds(
    clips: list[np.ndarray], labels: np.ndarray, evaluation: Evaluation
) -> tuple[float, float]:
    """(distance threshold, minimum top-1 probability) chosen on the training clips themselves."""
    means = _unit(np.stack([features[0].mean(0) for features in clips]))
    distances = []
    for i, label in enumerate(labels):
        others = np.flatnonzero((labels == label) & (np.arange(len(labels)) != i))
        centroid = _unit(means[others].mean(0))
        distances.append(1.0 - float(means[i] @ centroid))
    # The quantiles the shipped models use on their validation clips (see the manifest).
    threshold = float(np.quantile(distances, 0.975))
    right = evaluation.top1[evaluation.correct]
    min_top1 = float(np.quantile(right, 0.025)) if len(right) else 0.0
    return round(threshold, 6), round(min_top1, 6)
