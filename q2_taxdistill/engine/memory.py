"""Keep the process's memory close to what the run really holds.

glibc raises its mmap threshold each time a large block is freed, so after the first big
array (k-mer spectra, a block of neighbour distances) later ones of that size come from
the heap and their pages stay with the process after `del`: on a 6,000-contig run that
is ~70 MB of peak resident memory holding nothing. A fixed threshold sends every block of
1 MiB or more to its own mapping, returned to the system as soon as it is freed. Elsewhere
(macOS, musl) this does nothing.
"""
import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 20
_done = False


def release_large_blocks():
    """Make large allocations go back to the system when freed (once per process; glibc)."""
    global _done
    if _done:
        return
    _done = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)
    except (OSError, AttributeError):
        pass
