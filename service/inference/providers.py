"""Which onnxruntime execution providers sessions use: ACTIONSTYLE_ORT_PROVIDERS, in order.

`cpu` by default; `cuda,cpu` on the onnxruntime-gpu image (compose profile `gpu`). Providers
this onnxruntime build lacks are skipped, so CPU stays the fallback.

    ort.InferenceSession(model, options, providers=execution_providers())
"""

from __future__ import annotations

from functools import cache

from service.settings import Settings


@cache
def execution_providers() -> list[str]:
    return Settings().ort_provider_names()
