"""The installed wheel (not the checkout) finds its card templates, recipes and leaderboard Space."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_INSTALLED_CHECK = r'''
import sys
from pathlib import Path
import hubkit, hubkit.cards as cards, hubkit.quickstart as quickstart, hubkit.space as space
site = Path(hubkit.__file__).resolve().parent
assert str(site).startswith(sys.argv[1]), f"not imported from the venv's wheel: {site}"
for folder, wanted in ((cards.TEMPLATES, "sft_model.md"), (space.SPACE_DIR, "app.py"),
                       (space.SPACE_DIR / "board", "plots.py"), (space.SPACE_DIR, "benchmarks.json"),
                       (quickstart.RECIPE.parent, "quickstart.yaml")):
    assert (Path(folder) / wanted).is_file(), (folder, wanted)
    assert str(folder).startswith(str(site)), folder
board = space.space_module()  # the Space's data side, from the wheel
assert str(Path(board.__file__).resolve()).startswith(str(site)), board.__file__
import hubkit.benchmarks as registry  # every benchmark record ships, and the metric catalogue
assert str(registry.HERE).startswith(str(site)) and len(registry.BENCHMARKS) == int(sys.argv[2]), registry.BENCHMARKS
assert "acc" in registry.CATALOGUE
print("installed resources OK", site.parent.name)
'''


def test_pyproject_lists_every_hubkit_package():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "hubkit").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject's [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.mark.slow
def test_a_built_wheel_ships_templates_recipes_and_the_space(tmp_path):
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, env=env,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = list((tmp_path / "dist").glob("hubkit-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # hubkit's dependencies come from the environment running the tests (a virtualenv or not), after the venv's
    # own site-packages; a plain path, so that the editable checkout's finder there is not installed
    [venv_site] = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "outer-env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --force-reinstall: the editable checkout beside it (outer environment) has the same version
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q", str(wheel)],
                             capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    clean = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    from hubkit.benchmarks import BENCHMARKS

    check = subprocess.run([str(python), "-c", _INSTALLED_CHECK, str(venv), str(len(BENCHMARKS))],
                           capture_output=True, text=True,
                           cwd=tmp_path, env=clean, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    assert "installed resources OK" in check.stdout
    helped = subprocess.run([str(venv / "bin" / "hubkit"), "quickstart", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env=clean, timeout=120)
    assert helped.returncode == 0 and re.search(r"Examples:", helped.stdout), helped.stderr


def test_ci_runs_the_readmes_test_command_in_a_fresh_virtualenv():
    """CI is the README as a user follows it: a new venv, activated, then the README's second command verbatim."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    test_command = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()[1]
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == test_command
    steps = "\n".join(ci)
    assert steps.index("-m venv") < steps.index("/bin/activate") < steps.index(test_command)
