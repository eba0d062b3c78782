"""Custom classifiers as stored files, and their registry: list, load, delete, classify with.

Each is one small `.npz` (head weights, centroids and a JSON description: labels, thresholds,
metrics, who made it) kept in the job storage under `classifiers/<owner>/<name>.npz`, so it is
the same on the local volume and in S3, for every API process and worker. Nothing is cached
between requests: a classifier taught or deleted through one process is seen by all at once.

    registry = CustomClassifiers(storage, encoder_loader)
    classifier = registry.classifier("wave", client)  # a service.inference Classifier
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.contract.manifest import ClassifierEntry, ClassifierMetrics, OpenSetSpec
from service.custom.features import Encoder
from service.custom.head import METHOD, Head
from service.inference.classifier import Classifier
from service.inference.registry import ModelRegistry
from service.jobs.storage import JobStorage

FAMILY = "custom"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_NAME_LENGTH = 64
ANONYMOUS_OWNER = "anonymous"
_LOGITS, _DISTANCE = "logits", "ood_distance"


class UnknownClassifier(LookupError):
    """No custom classifier of this name belongs to the caller."""


class InvalidClassifierName(ValueError):
    """The name is empty, too long or holds characters a model name cannot have."""


def check_name(name: str) -> str:
    if not name:
        raise InvalidClassifierName("send the new classifier's `name` (letters, digits, _ and -)")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidClassifierName(
            f"the name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed"
        )
    if not NAME_PATTERN.match(name):
        raise InvalidClassifierName(
            f"'{name}' is not a valid name: use letters, digits, _ and -, starting with a "
            "letter or digit"
        )
    return name


def owner_folder(client: str) -> str:
    """The storage folder of one API key's classifiers (the key's hash; 'anonymous' without)."""
    return f"classifiers/{client or ANONYMOUS_OWNER}"


def storage_key(name: str, client: str) -> str:
    return f"{owner_folder(client)}/{check_name(name)}.npz"


@dataclass(frozen=True)
class CustomModel:
    """A taught classifier: its head and what describes it (labels, thresholds, metrics...)."""

    head: Head
    description: dict[str, Any]

    @property
    def name(self) -> str:
        return self.description["name"]

    @property
    def labels(self) -> list[str]:
        return self.description["labels"]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        head = self.head
        text = json.dumps(self.description).encode()
        np.savez(
            buffer,
            weights=head.weights.astype(np.float32),
            bias=head.bias.astype(np.float32),
            centre=head.centre.astype(np.float32),
            centroids=head.centroids.astype(np.float32),
            description=np.frombuffer(text, np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            head = Head(arrays["weights"], arrays["bias"], arrays["centre"], arrays["centroids"])
            description = json.loads(arrays["description"].tobytes())
        return cls(head, description)

    def entry(self, encoder: Encoder | None, sha256: str) -> ClassifierEntry:
        """How GET /models and /classify describe it, as for the shipped classifiers."""
        info = self.description
        spec = encoder.entry.input if encoder else info["input"]
        return ClassifierEntry(
            name=self.name,
            family=FAMILY,
            display_name=f"{self.name} (taught from {info['clips']} clips)",
            file=f"{self.name}.npz",
            sha256=sha256,
            input_name="clip",
            output_name=_LOGITS,
            input=spec,
            labels=self.labels,
            metrics=ClassifierMetrics.model_validate(info["metrics"]),
            training=info["training"],
            open_set=OpenSetSpec(
                output_name=_DISTANCE,
                threshold=info["open_set"]["threshold"],
                min_top1_probability=info["open_set"]["min_top1_probability"],
                method=METHOD,
            ),
        )


class _HeadSession:
    """Encoder + head behind the one method `classify()` calls on an onnxruntime session."""

    def __init__(self, encoder: Encoder, head: Head) -> None:
        self.encoder, self.head = encoder, head

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        logits, distance = self.head.predict(self.encoder.features(feeds["clip"]))
        found = {_LOGITS: logits, _DISTANCE: distance}
        return [found[name] for name in outputs]


class CustomClassifiers:
    """The custom classifiers in the job storage, each visible to the key that made it only."""

    def __init__(self, storage: JobStorage, encoder: Callable[[], Encoder]) -> None:
        self.storage, self._encoder = storage, encoder

    def _load(self, name: str, client: str) -> tuple[CustomModel, str]:
        try:
            key = storage_key(name, client)
        except InvalidClassifierName:
            key = None
        data = self.storage.get_blob(key) if key else None
        if data is None:
            raise UnknownClassifier(f"no custom classifier '{name}' (of this API key)")
        return CustomModel.from_bytes(data), hashlib.sha256(data).hexdigest()

    def exists(self, name: str, client: str) -> bool:
        return self.storage.get_blob(storage_key(name, client)) is not None

    def model(self, name: str, client: str) -> CustomModel:
        return self._load(name, client)[0]

    def entry(self, name: str, client: str) -> ClassifierEntry:
        model, digest = self._load(name, client)
        return model.entry(None, digest)

    def entries(self, client: str) -> list[ClassifierEntry]:
        found = []
        for key in self.storage.list_blobs(owner_folder(client)):
            data = self.storage.get_blob(key) if key.endswith(".npz") else None
            if data is not None:  # deleted meanwhile: skip it
                found.append(CustomModel.from_bytes(data).entry(None, _sha(data)))
        return found

    def classifier(self, name: str, client: str) -> Classifier:
        """A Classifier that `service.inference.classifier.classify` runs like a shipped one."""
        model, digest = self._load(name, client)
        encoder = self._encoder()
        entry = model.entry(encoder, digest)
        session = _HeadSession(encoder, model.head)
        open_set = entry.open_set
        if open_set is None:  # every taught model sets its thresholds; a stored one may predate it
            return Classifier(entry, encoder.spec, session)
        return Classifier(
            entry, encoder.spec, session, open_set.threshold, open_set.min_top1_probability
        )

    def resolve(self, models: ModelRegistry, name: str | None, client: str) -> Classifier:
        """A shipped classifier by name (the default for None), else one of the caller's own."""
        if name is None or name in models.classifier_names:
            return models.classifier(name)
        try:
            return self.classifier(name, client)
        except UnknownClassifier:
            return models.classifier(name)  # raises UnknownModel, naming the known models

    def delete(self, name: str, client: str) -> ClassifierEntry:
        """Remove the caller's classifier; returns how it was described."""
        entry = self.entry(name, client)  # UnknownClassifier when it is not the caller's
        if not self.storage.delete_blob(storage_key(name, client)):
            raise UnknownClassifier(f"no custom classifier '{name}' (of this API key)")
        return entry


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
