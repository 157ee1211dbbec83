"""The papermill smoke run, shared by two test files so that it uses both cores.

Notebooks 01, 02 and 04 run in `test_notebooks.py` (first in the queue), 03 and 05 in
`test_notebooks_late.py` (after the slowest unit files, `conftest.py`), so that with `pytest -n 2
--dist loadfile` one worker runs the long chain 01-02-04 while the other runs the unit tests, then
03 beside 02 and 05 beside 04 (05 reads 01-03's artifacts, and 04's conversion table only for a
figure it draws when present). The checks of all five run last (`test_notebooks_checks.py`).

`ensure(profile, "04", run_id)` runs a notebook once per test session, after the notebooks it
reads (`DEPS`): one lock file per notebook, held while it runs, and a marker with the session's id
when it ended. Whichever worker gets to a notebook first runs it; the other waits on the lock, then
reads the marker. Locks are taken one at a time (a notebook's upstream ones are ensured before its
own lock), so two workers cannot wait on each other. A marker of another session is stale: every
session runs every notebook again, from the artifacts under `artifacts/smoke/`.
"""

from __future__ import annotations

import fcntl
import json
import uuid

from salesman_utils.config import paths
from salesman_utils.run import NOTEBOOK_DIR, NotebookFailed, discover, run_notebooks

NOTEBOOKS = discover(NOTEBOOK_DIR)

DEPS = {"01": (), "02": ("01",), "03": ("01",), "04": ("02", "03"), "05": ("02", "03")}
LOCAL_RUN_ID = uuid.uuid4().hex  # a session without xdist workers


def run_id(config) -> str:
    """One id per test session, the same on every xdist worker (xdist's `testrunuid`)."""
    worker = getattr(config, "workerinput", None)
    return worker["testrunuid"] if worker else LOCAL_RUN_ID


def ensure(profile, notebook: str, session: str) -> dict:
    """The manifest entry of `notebook` ("01".."05") run in this session: run now (after the
    notebooks it reads) unless another worker did. A failed upstream notebook gives its own entry
    (status "failed"), named in the error of the notebook that needed it."""
    for dep in DEPS[notebook]:
        up = ensure(profile, dep, session)
        if up.get("status") != "ok":
            return {"notebook": notebook, "status": "upstream failed", "upstream": up}
    folder = paths(profile).artifacts / "smoke-session"
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{notebook}.json"
    with open(folder / f"{notebook}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            saved = json.loads(marker.read_text()) if marker.exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):  # left half-written: stale
            saved = {}
        if saved.get("session") == session:
            return saved["entry"]
        try:
            manifest = run_notebooks(profile, only=[notebook])
            entry = next(e for e in manifest["notebooks"] if e["notebook"].startswith(notebook))
        except NotebookFailed as exc:
            entry = {"notebook": notebook, "status": exc.status, "cell": exc.cell}
            entry["error"] = exc.error or str(exc)
        except Exception as exc:  # the runner's own failure: recorded, so no worker runs it again
            entry = {
                "notebook": notebook,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
            }
        marker.write_text(json.dumps({"session": session, "entry": entry}))
        return entry


def check_smoke_run(prof, nb_path, session: str) -> None:
    """Run `nb_path` (after its upstream notebooks, unless this session ran them): it ran to the
    end and wrote its metrics for this profile and seed."""
    entry = ensure(prof, nb_path.stem[:2], session)
    assert entry["status"] == "ok", entry
    metrics = paths(prof).metrics / f"{nb_path.stem}.json"
    assert metrics.exists(), f"{nb_path.name} wrote no {metrics.name}"
    body = json.loads(metrics.read_text())
    assert body["profile"] == "smoke" and body["seed"] == prof.seed
