"""Reading Prometheus exposition text in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` (e.g. `..._total`, `..._bucket`): (labels, value)."""
    return [
        (dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample with exactly these labels; fails when it is absent."""
    found = [value for got, value in samples(text, name) if got == labels]
    assert found, f"{name}{labels} not in the metrics: {samples(text, name)}"
    return found[0]
