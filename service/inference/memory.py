"""Where onnxruntime sessions take their working memory from, and freed memory handed back.

Used by the API's and the workers' sessions alike:

    options = ort.SessionOptions()
    use_arena(options, "shared")   # one arena for every session of the process that opts in
    release_freed_heap()           # after work that freed much: back to the OS
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import onnxruntime as ort

if TYPE_CHECKING:
    from service.settings import MemoryArena


@cache
def _register_shared_arena() -> None:
    """One CPU arena in onnxruntime's process-wide environment, for sessions that opt in.

    onnxruntime refuses a second registration, hence once per process.
    """
    memory = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    # 0: grow by powers of two, as a session's own arena does (kSameAsRequested measured larger).
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg({"arena_extend_strategy": 0}))


def use_arena(options: ort.SessionOptions, arena: MemoryArena) -> None:
    """shared: the process's one arena, which keeps about the largest working set of all the
    sessions on it rather than the sum; per_session: an arena of the session's own, kept for its
    life; off: none (the least memory; large tensors allocated afresh each run)."""
    if arena == "shared":
        _register_shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
    elif arena == "off":
        options.enable_cpu_mem_arena = False


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, looked up once (finding the C library runs ldconfig: ~1.5 ms)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back
        return None


def release_freed_heap() -> bool:
    """Hand the heap memory that is free back to the OS; False where the C library cannot.

    Opening a session parses the ONNX file and rewrites its weights (layout, pre-packing): tens of
    MiB allocated and freed in pieces that glibc keeps in the process for reuse, about 75 MiB for
    the five classifiers; a request's decoded frames leave 15-60 MiB the same way. Nothing else
    would reuse that much, so it would stay resident for good. A call takes 0.3-1.6 ms.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
