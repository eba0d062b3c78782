"""The declared boundary between the halves, and no import cycles, read from the source (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.utils.data import REPO_ROOT

# What training may use of the service: the manifest contract, the shared video modules, the
# arbitrary-style wrapper (the service's `style=custom` engine is the students' teacher), and the
# style networks as workers run them.
TRAINING_MAY_IMPORT = {
    "service.contract.manifest",
    "service.inference.arbitrary",
    "service.inference.networks",
    "service.inference.stylize",
    "service.video.decode",
    "service.video.preprocess",
}
SERVICE_MUST_NOT_IMPORT = ("torch", "training", "torchvision")
TRAINING_MUST_NOT_IMPORT = ("fastapi", "celery", "starlette", "uvicorn")


def _modules(package: str) -> dict[str, Path]:
    modules = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _within(name: str, roots: tuple[str, ...] | set[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def test_the_service_never_imports_torch_or_training() -> None:
    offenders = {
        name: sorted(i for i in _imports(path) if _within(i, SERVICE_MUST_NOT_IMPORT))
        for name, path in _modules("service").items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_training_uses_only_the_contract_and_the_shared_video_modules() -> None:
    service_modules = set(_modules("service"))
    offenders = {}
    for name, path in _modules("training").items():
        used = {i for i in _imports(path) if i in service_modules or _within(i, ("service",))}
        used = {i for i in used if i in service_modules}  # `from m import f` names m, not m.f
        banned = {i for i in _imports(path) if _within(i, TRAINING_MUST_NOT_IMPORT)}
        if (used - TRAINING_MAY_IMPORT) or banned:
            offenders[name] = sorted((used - TRAINING_MAY_IMPORT) | banned)
    assert offenders == {}


def test_no_import_cycles_among_our_modules() -> None:
    modules = {**_modules("service"), **_modules("training")}
    graph = {
        name: {i for i in _imports(path, top_level_only=True) if i in modules and i != name}
        for name, path in modules.items()
    }
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dependency in sorted(graph[module]):
            if state.get(dependency) == "open":
                cycles.append([*path[path.index(dependency) :], dependency])
            elif dependency not in state:
                visit(dependency, [*path, dependency])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
