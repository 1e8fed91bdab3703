"""Stable pseudo-random numbers from text: the simulator's only source of chance.

>>> fraction("a", "b") == fraction("a", "b"), 0.0 <= fraction("x") < 1.0
(True, True)
"""

from __future__ import annotations

import hashlib


def fraction(*parts: str) -> float:
    """A number in [0, 1) that depends only on ``parts``."""
    data = "\x1f".join(parts).encode()
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest())
    return value / 2**64


def pick(options: tuple[str, ...], *parts: str) -> str:
    """One of ``options``, chosen by a hash of ``parts``.

    >>> pick(("x",), "anything")
    'x'
    """
    return options[int(fraction(*parts) * len(options))]


def canary(*parts: str) -> str:
    """An eight-hex-digit token unique to ``parts``, e.g. for ``(ref 7f3a9c21)``."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=4).hexdigest()
