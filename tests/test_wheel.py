"""The package as it installs (scripts/test-wheel.sh, also `make test-wheel`): the wheel built from
a clean copy of the checkout holds every file of q2_taxdistill/, installs in a fresh venv that sees
Debian's QIIME 2, and runs refine-taxonomy and summarize-soft-labels through q2cli from a folder
outside the source tree. About a minute and a half, most of it installing torch in that venv: it
runs in `make test` (in its own pytest-xdist process, tests/conftest.py starts it first)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent




def _debian_venv():
    """The venv recipes/install-debian.sh makes (it sees Debian's QIIME 2), which the script's
    fresh venv copies; not the current-QIIME 2 venv of scripts/test-current.sh."""
    cfg = VENV / "pyvenv.cfg"
    return cfg.exists() and "include-system-site-packages = true" in cfg.read_text()


@pytest.mark.skipif(not _debian_venv() or shutil.which("git") is None
                    or not (ROOT / ".git").exists(),
                    reason="needs the Debian project venv (make setup) and a git checkout")
def test_the_wheel_installs_and_runs_without_the_source_tree():
    env = dict(os.environ, VENV=str(VENV))
    env.pop("PYTHONPATH", None)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "test-wheel.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "ok: the wheel installs and runs without the source tree" in done.stdout
    contigs = sum(line.startswith(">") for line in
                  open(ROOT / "q2_taxdistill" / "data" / "example" / "contigs.fna"))
    assert f"corrected taxonomy: {contigs} contigs; soft.qzv written" in done.stdout
