"""Memory the process has freed, handed back to the OS."""

from __future__ import annotations

import ctypes
import ctypes.util


def release_freed_heap() -> bool:
    """Hand the heap memory that is free back to the OS; False where the C library cannot.

    Opening a session parses the ONNX file and rewrites its weights (layout, pre-packing): tens of
    MiB allocated and freed in pieces that glibc keeps in the process for reuse, about 75 MiB for
    the five classifiers. Nothing else would reuse that much, so it would stay resident for good.
    """
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back
        return False
    trim(0)
    return True
