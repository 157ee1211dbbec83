"""Artifacts that name themselves: how a cached or trained file that cannot be read is reported.

Two kinds of artifact, two rules:

- a pure CACHE (a pickle of fitted parts, a posterior `.npy`, a `model.json`, a library json, the
  sqlite response cache) is rebuilt, never trusted: `load_cached(path, loader)` returns None when
  the file is absent, and when it cannot be read it moves the file aside (``<name>.broken``), warns
  in one line naming it (`ArtifactWarning`) and returns None, so the caller rebuilds it;
- an artifact that costs minutes to rebuild (a trained LoRA adapter) is not rebuilt behind the
  user's back: `check_adapter(folder)` raises `ArtifactError`, one line naming the folder, the file
  and the command that retrains it.

`run_command(notebook, profile)` is the command that re-runs the notebook which writes an artifact.
`write_whole(path, text)` writes a file so that no reader ever sees half of it.
"""

from __future__ import annotations

import json
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ArtifactError(RuntimeError):
    """An artifact cannot be read and is not rebuilt automatically: the message names the file
    and the command that rebuilds it."""


class ArtifactWarning(UserWarning):
    """A cache file could not be read: it was moved aside and is being rebuilt."""


def write_whole(path: str | Path, text: str) -> Path:
    """Write `text` to `<path>.tmp`, then rename it over `path` (atomic on one file system): a
    crash leaves the old file, and a process reading beside the writer (the test loop runs two
    notebooks at once) never reads half of it. Returns `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def run_command(notebook: str, profile: str | None = None) -> str:
    """The command that re-runs `notebook` ("01" ... "05") for `profile` (a placeholder if None)."""
    return f"python -m salesman_utils.run --profile {profile or '<profile>'} --only {notebook}"


def reason(exc: BaseException) -> str:
    """The first line of an exception, with its type (for a one-line message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def discard(path: str | Path, why: str, companions: tuple[str, ...] = ()) -> Path:
    """Move an unreadable cache file aside to ``<name>.broken`` (and its `companions`, suffixes of
    files that belong to it such as sqlite's ``-wal``), warn in one line, return where it went."""
    path = Path(path)
    aside = path.with_name(path.name + ".broken")
    for suffix in ("", *companions):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.replace(aside.with_name(aside.name + suffix))
    warnings.warn(
        ArtifactWarning(f"{path}: unreadable cache ({why}); moved to {aside.name}, rebuilding it"),
        stacklevel=3,
    )
    return aside


def load_cached(path: str | Path, loader: Callable[[Path], T]) -> T | None:
    """`loader(path)`, or None when the cache file is absent or unreadable (then moved aside with
    a one-line `ArtifactWarning`): the caller rebuilds it either way."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return loader(path)
    except Exception as exc:  # any unreadable cache is rebuilt, whatever the reader raised
        discard(path, reason(exc).replace(f"{path}: ", ""))
        return None


def safetensors_problem(path: str | Path) -> str | None:
    """Why a `.safetensors` file is unreadable (truncated, bad header), or None when it is whole:
    an 8-byte header length, a JSON header, and data exactly as long as the header's offsets say.
    Reads the header only."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than the 8-byte header length"
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            return f"header of {n} bytes, but the file has {size - 8} after its length"
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            return f"header is not JSON ({exc})"
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
    ]
    need = 8 + n + max(ends, default=0)
    if size != need:
        return f"{size} bytes, but its header describes {need} (truncated or padded)"
    return None


def adapter_command(folder: str | Path, profile: str | None = None) -> str:
    """How to rebuild a trained adapter folder (``<artifacts>/models/<variant>/adapter``)."""
    folder = Path(folder)
    variant = folder.parent.name if folder.name == "adapter" else "<variant>"
    p = profile or "<profile>"
    return (
        f"delete {folder} and retrain it: python -m salesman_utils.agent.training --profile {p} "
        f"--variant {variant} --force (or re-run notebook 02: {run_command('02', profile)})"
    )


def check_adapter(folder: str | Path, profile: str | None = None) -> None:
    """Raise `ArtifactError` (one line: the folder, the bad file, the command that retrains it)
    when a LoRA adapter folder's config is not JSON or a `.safetensors` weight file is damaged.
    Reads headers only: no model is loaded."""
    folder = Path(folder)
    config = folder / "adapter_config.json"
    problems = []
    if config.exists():
        try:
            json.loads(config.read_text())
        except ValueError as exc:
            problems.append(f"{config.name}: not JSON ({exc})")
    for f in sorted(folder.glob("*.safetensors")):
        why = safetensors_problem(f)
        if why:
            problems.append(f"{f.name}: {why}")
    if problems:
        raise ArtifactError(
            f"adapter {folder}: {'; '.join(problems)}; {adapter_command(folder, profile)}"
        )
