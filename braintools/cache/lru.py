"""A least-recently-used cache of volumes, bounded in bytes (not in a number of items).

BraTS volumes are large (a float16 (4, 240, 240, 155) image is 71 MB) and of different sizes across
datasets, so "keep 10 volumes" says nothing about memory. ``LRUVolumeCache`` keeps the most recently
used volumes while their total ``nbytes`` stays within ``max_bytes``, and counts hits and misses so you can
see whether the budget is large enough for your access pattern.

Each process has its own cache: with a PyTorch ``DataLoader``, every worker process holds up to
``max_bytes`` on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np


def value_nbytes(value: Any) -> int:
    """Return the bytes held by an array, or by the arrays of a tuple/list (``None`` counts 0).

    Example:
        >>> value_nbytes((np.zeros(10, np.float32), None))
        40
    """
    if value is None:
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(value_nbytes(item) for item in value)
    raise TypeError(f"LRUVolumeCache stores arrays or tuples of arrays, got {type(value).__name__}")


def _make_read_only(value: Any) -> None:
    """Mark every array of ``value`` read-only, so a caller cannot change the cached copy by accident."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (tuple, list)):
        for item in value:
            _make_read_only(item)


class LRUVolumeCache:
    """Keep the most recently used volumes in memory while their total size stays within ``max_bytes`` (notebook 03).

    Args:
        max_bytes: memory budget in bytes; the least recently used volumes are evicted to stay within it.
            A volume larger than the whole budget is returned but not kept.
        load: function that loads a volume from its key, e.g. ``lambda case_id: np.load(...)``; it must
            return an array or a tuple of arrays (``None`` allowed inside the tuple).

    Example:
        >>> cache = LRUVolumeCache(200 * 2**20, load=lambda key: np.zeros((4, 64, 64, 40), np.float16))
        >>> image = cache.get("case_1"); image = cache.get("case_1")
        >>> cache.hits, cache.misses
        (1, 1)
    """

    def __init__(self, max_bytes: int, load: Callable[[Hashable], Any]) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.load = load
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.current_bytes = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        """Return the volume of ``key``: from memory (a hit) or loaded now (a miss). Arrays are read-only."""
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        self.misses += 1
        value = self.load(key)
        _make_read_only(value)
        self._store(key, value)
        return value

    def _store(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` and evict the least recently used volumes until the total fits the budget."""
        size = value_nbytes(value)
        if size > self.max_bytes:
            return
        while self.current_bytes + size > self.max_bytes:
            _, (_, evicted_size) = self._items.popitem(last=False)
            self.current_bytes -= evicted_size
            self.evictions += 1
        self._items[key] = (value, size)
        self.current_bytes += size

    def stats(self) -> dict[str, float]:
        """Return the counters as a dict: volumes, MiB held, hits, misses, evictions and the hit rate (0..1)."""
        requests = self.hits + self.misses
        return {"volumes": len(self), "MiB": self.current_bytes / 2**20, "hits": self.hits, "misses": self.misses,
                "evictions": self.evictions, "hit rate": self.hits / requests if requests else 0.0}

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[Hashable]:
        """Return the cached keys, least recently used first."""
        return list(self._items)

    def clear(self) -> None:
        """Forget every cached volume (the hit and miss counters are kept)."""
        self._items.clear()
        self.current_bytes = 0

    def __repr__(self) -> str:
        return (f"LRUVolumeCache({len(self)} volumes, {self.current_bytes / 2**20:.1f} of "
                f"{self.max_bytes / 2**20:.1f} MiB, hits={self.hits}, misses={self.misses})")
