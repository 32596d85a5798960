"""prompts/ ships with the package: a wheel holds every template, and kernelagent.prompting finds them when only the
installed files are importable (no source tree on sys.path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = sorted(p.name for p in (ROOT / "prompts").glob("*.j2"))


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel `pip install .` would install, built from a copy of what the build reads (the checkout stays clean:
    an in-tree build leaves build/ and *.egg-info behind)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("kernelagent", "prompts"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheel"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=240,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("kernelagent-*.whl")
    return wheel


def test_wheel_ships_prompts_and_prompting_finds_them_installed(tmp_path):
    assert PROMPTS, "no templates in prompts/"
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.rpartition("/")[2] for n in names if n.startswith("kernelagent/prompts/")) == PROMPTS
    assert "kernelagent/report/templates/report.html.j2" in names

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Only the unpacked wheel provides kernelagent (it goes first on sys.path, before the editable install's entry),
    # and the process runs elsewhere than the checkout.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path[:] = [p for p in sys.path if p not in ('', sys.argv[2])]\n"
        "import kernelagent, kernelagent.prompting as p\n"
        "assert kernelagent.__file__.startswith(sys.argv[1]), kernelagent.__file__\n"
        "assert str(p.PROMPTS_DIR).startswith(sys.argv[1]), p.PROMPTS_DIR\n"
        "print(sorted(p._environment().list_templates()))\n"
        "print(p.render('system.j2'))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe, str(site), str(ROOT)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(PROMPTS)
    assert run.stdout.splitlines()[1].strip(), "system.j2 rendered empty"


def test_source_tree_uses_the_top_level_prompts():
    from kernelagent import prompting

    assert prompting.PROMPTS_DIR == ROOT / "prompts"
