"""Notebooks 03 and 05 of the smoke run, after the slowest unit files in the test queue
(`conftest.py`): with `pytest -n 2 --dist loadfile` the worker that is not running 01, 02 and 04
runs 03 while 02 runs, then 05 beside 04 (`smoke_chain.py`). The checks that read all five
notebooks are in `test_notebooks_checks.py`.
"""

from __future__ import annotations

import pytest
from smoke_chain import NOTEBOOKS, check_smoke_run, run_id

LATE = [p for p in NOTEBOOKS if p.stem[:2] in {"03", "05"}]


@pytest.mark.parametrize("nb_path", LATE, ids=[p.stem for p in LATE])
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.notebooks
def test_smoke_run_of_notebook(nb_path, smoke_profile, request):
    check_smoke_run(smoke_profile, nb_path, run_id(request.config))
