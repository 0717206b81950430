"""glibc's allocator, set for an agent that streams images in 1 MiB pieces.

With glibc's defaults, a block of 128 KiB or more gets its own mapping and memory freed at the
top of a heap goes back to the kernel: each piece of a pull (read, hashed, inflated, written)
then faulted its pages in afresh, 11,000 page faults for a 50 MiB pull, which took 0.15-0.17 s
in the agent against 0.11-0.13 s with the thresholds below (bench/pull.py). glibc raises its
thresholds by itself once a large block is freed, which is why a process that had allocated a
big buffer early pulled fast and the agent did not. What a transfer leaves free is handed back
once it ends (`release`), so the agent's resident memory stays as small. Without glibc (musl)
nothing changes."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 16 << 20  # free memory kept at a heap's top before it goes back to the kernel
MMAP_THRESHOLD = 4 << 20  # blocks this large or larger get their own mapping, freed at once


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def tune_for_transfers() -> None:
    if _LIBC is not None:
        _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release() -> None:
    """Hands the free memory of every heap back to the kernel (after a transfer)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
