"""The Space is deployed without hubkit: it must keep reading what hubkit writes, and import on its own."""

from __future__ import annotations

import subprocess
import sys

from hubkit.results import COLUMNS
from hubkit.space import SPACE_DIR, SPACE_FILES, SPACE_PACKAGE, space_module


def test_the_space_reads_only_columns_of_hubkits_results_schema():
    board = space_module()
    assert set(board.COLUMNS) <= set(COLUMNS), sorted(set(board.COLUMNS) - set(COLUMNS))
    assert set(space_module("board.schema").TEXT) <= set(board.COLUMNS)


def test_every_file_of_the_space_is_deployed():
    shipped = {p.relative_to(SPACE_DIR).as_posix() for p in SPACE_DIR.rglob("*")
               if p.suffix in (".py", ".json", ".md", ".txt") and "__pycache__" not in p.parts}  # the wheel's patterns
    assert shipped == set(SPACE_FILES), shipped ^ set(SPACE_FILES)


def test_the_space_imports_without_hubkit_as_a_space_runs_it():
    """`python app.py` in the Space's folder, with hubkit made unimportable: the page's module and its data side
    import, and nothing of hubkit is loaded."""
    code = ("import sys; sys.modules['hubkit'] = None; sys.path.insert(0, '.'); import app, board; "
            "assert app.lb is board and app.build and board.Board; "
            "assert not [m for m in sys.modules if m.startswith('hubkit') and sys.modules[m] is not None]; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=SPACE_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_hubkit_loads_the_space_under_a_private_name_whatever_else_is_called_app():
    """A module named `app` or `board` imported before (another project's) neither replaces the Space's nor is
    replaced by it."""
    code = ("import sys, types; sys.modules['app'] = types.ModuleType('app'); sys.modules['board'] = "
            "types.ModuleType('board'); from hubkit.space import space_module; b = space_module(); "
            f"assert b.__name__ == '{SPACE_PACKAGE}.board' and hasattr(b, 'Board'); "
            "assert not hasattr(sys.modules['board'], 'Board') and sys.modules['app'].__name__ == 'app'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
