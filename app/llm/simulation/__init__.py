"""The offline optimization simulator: task, critic, judge and optimizer models as pure
functions of the request text, selected by model name.

Model names: ``sim-task``, ``sim-critic``, ``sim-judge``, ``sim-optimizer``, with variants
after colons: ``sim-critic:generic`` (vague feedback, no diagnosis: a negative control),
``sim-critic:fail`` (every call fails), ``sim-optimizer:off`` (returns the value
unchanged), ``sim-optimizer:harmful`` (adds the harmful H1 instruction) and ``:flaky`` on
any of critic, judge and optimizer (a seeded ~10% of replies lose their tags); and on any
role the transport noise of ``noise.py``: ``:throttled`` and ``:errors`` (429/500 schedules),
``:slow`` (seeded latency). Each module
documents its part of the design; the shipped examples are in ``examples/optimization/``.

>>> is_simulation("sim-critic:generic"), is_simulation("sim-fast")
(True, False)
>>> question = "I have a cat and two drums. How many animals do I have?"
>>> answer("sim-task", "Reply 'Answer: N'.", question).splitlines()[-1]
'Answer: 2'
"""

from app.llm.simulation.hashing import canaries
from app.llm.simulation.roles import SimulatedOutage, answer, is_simulation, parse_model

__all__ = ["SimulatedOutage", "answer", "canaries", "is_simulation", "parse_model"]
