"""How a process takes a shared store's budget and leases in bulk (DESIGN §5): the settings
of :class:`~app.engine.resources.slices.SlicedRateStore` and its
:class:`~app.engine.resources.slot_pool.SlotPool`.

>>> SliceSettings().for_lease(30.0).hold_s
1.5
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SLICE_S = 0.1
DEFAULT_LIFE_S = 0.5
DEFAULT_HOLD_S = 2.0
DEFAULT_LINGER_S = 0.05
DEFAULT_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class SliceSettings:
    """How much a process takes at once: ``slice_s`` seconds' worth of each rate (0 = no
    budget slices), kept ``life_s``; slot leases reused for ``hold_s`` (0 = never)."""

    slice_s: float = DEFAULT_SLICE_S
    life_s: float = DEFAULT_LIFE_S
    hold_s: float = DEFAULT_HOLD_S
    linger_s: float = DEFAULT_LINGER_S
    poll_s: float = DEFAULT_POLL_S

    def for_lease(self, ttl_s: float) -> SliceSettings:
        """Holds short against the lease: while calls run, every lease of the alias is renewed
        every ``ttl_s / 3`` (:meth:`SlicedRateStore.renew_slots`), and a lease held again
        once half ``ttl_s`` passed since its last renewal, so none goes unrenewed for over
        about ``ttl_s / 2``."""
        return SliceSettings(
            self.slice_s, self.life_s, min(self.hold_s, ttl_s / 20), self.linger_s, self.poll_s
        )
