"""A wrong command gets one line, not a traceback: an unknown profile name or a profile value of
the wrong type prints the clear message (naming the profile, or the file and the dotted key) on
stderr and exits with status 2, as argparse does for a bad option."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from salesman_utils.config import CONFIG_DIR, REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "salesman_utils.run", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unknown_profile_name_is_one_line():
    line = _one_line(_run("--profile", "nosuch"))
    assert "unknown profile 'nosuch'" in line and "smoke" in line


@pytest.mark.parametrize("value", ["ten", "\nbroken: [", None])
def test_bad_profile_value_is_one_line(tmp_path, value):
    if value is None:
        text = "seed: 0\nno_such_section: {}\n"
        expect = "no_such_section: unknown key"
    elif value.startswith("\n"):
        text = (CONFIG_DIR / "smoke.yaml").read_text() + value
        expect = "not valid YAML"
    else:
        data = yaml.safe_load((CONFIG_DIR / "smoke.yaml").read_text())
        data["training"]["sft"]["max_steps"] = value
        text = yaml.safe_dump(data)
        expect = "training.sft.max_steps: expected int, got str 'ten'"
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    line = _one_line(_run("--profile", str(bad)))
    assert str(bad) in line and expect in line


def test_unknown_notebook_is_one_line():
    line = _one_line(_run("--profile", "smoke", "--only", "99"))
    assert "--only" in line and "99" in line
