"""Random numbers as a pure function of (salt, step, draw, index), computed on any device.

The trainer's augmentation draws its crops, flips and zooms from :class:`KeyedRandom`
rather than from a ``torch.Generator``: a generator is state that a CUDA graph has to
register and that ``torch.compile`` cannot trace (a generator argument breaks the
graph), whereas a hash of a step counter held in a device tensor is a handful of
integer kernels that a captured step replays with the new step's numbers. It carries
no state of its own, so a resumed run draws exactly what an uninterrupted one would
from its step count alone, and the integer arithmetic gives the same numbers on the
CPU and on a GPU.

Values live in int64 tensors but never leave [0, 2**32), and every product stays
below 2**63, so nothing relies on how a device wraps an overflowing integer.

Example:
    >>> import torch
    >>> r = KeyedRandom(torch.tensor(7), salt=seed_salt(0))
    >>> u = r.rand(4)
    >>> bool(((0 <= u) & (u < 1)).all()), torch.equal(u, KeyedRandom(torch.tensor(7), seed_salt(0)).rand(4))
    (True, True)
"""

from __future__ import annotations

import torch
from torch import Tensor

_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio: spreads consecutive draw numbers apart


def _mul32(x, c: int):
    """``(x * c) mod 2**32`` for ``x`` in [0, 2**32), in two halves so that no product
    exceeds 2**49 (an int64 tensor never overflows)."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def hash32(x):
    """Wellons' ``lowbias32``: a bijection of [0, 2**32) in which every input bit
    flips about half of the output bits. Works on Python ints and int64 tensors."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def seed_salt(seed: int, rank: int = 0) -> int:
    """The 32-bit salt of a run's ``seed`` and DDP ``rank`` (each rank draws its own)."""
    return hash32(hash32(hash32(seed & _M32) ^ ((seed >> 32) & _M32)) ^ (rank & _M32))


class KeyedRandom:
    """The random numbers of one training step: the ``d``-th request of ``n`` numbers is
    ``hash(hash(i + k_d) ^ k_d)`` for ``i < n``, with ``k_d`` a hash of the salt, the
    step and ``d``. Passed where :class:`wsms_viz.data.Augmenter` takes a generator.

    Args:
        step: int64 tensor (0-dim) on the device the numbers are wanted on; it is read
            when the numbers are computed, so a captured graph sees each step's value.
        salt: from :func:`seed_salt`.
    """

    def __init__(self, step: Tensor, salt: int):
        self.step, self.salt, self.draws = step, salt & _M32, 0
        self.device = step.device

    def bits(self, n: int) -> Tensor:
        """``n`` uniform 32-bit values (int64), a new set on every call."""
        key = hash32((hash32((self.step & _M32) ^ self.salt) + self.draws * _GOLDEN) & _M32)
        self.draws += 1
        i = torch.arange(n, device=self.device, dtype=torch.int64)
        return hash32(hash32((i + key) & _M32) ^ key)

    def rand(self, n: int) -> Tensor:
        """``n`` float32 values uniform in [0, 1) (24 random bits each, exactly representable)."""
        return (self.bits(n) >> 8).to(torch.float32) * (1.0 / (1 << 24))

    def randint(self, high: int, n: int) -> Tensor:
        """``n`` int64 values uniform in [0, ``high``) (bias below ``high`` / 2**32)."""
        return self.bits(n) % high
