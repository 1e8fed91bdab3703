"""Hostile input: a 4xx problem naming the field, ``/healthz`` fast throughout, nothing lost.

The cases live in the ``cases_*.py`` modules beside this file (see ``tests/support/hostile.py``
for how to add one); each is one test on each database.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support.hostile import Baseline, Hostile, ids, run_case
from tests.support.service import Service


def _load_cases() -> list[Hostile]:
    cases: list[Hostile] = []
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"hostile_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.extend(module.CASES)
    return cases


CASES = _load_cases()


def test_the_suite_is_large_and_each_case_is_named_once() -> None:
    assert len(CASES) >= 40
    assert len(set(ids(CASES))) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_hostile_request(service: Service, baseline: Baseline, case: Hostile) -> None:
    await run_case(service, baseline, case)
