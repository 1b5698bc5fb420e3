"""detrkit's projects install as ``detrkit_projects``, so a process can hold detrex's ``projects`` namespace
(its ``projects.dino.modeling``, ``projects.focus_detr.modeling``, ...) and ours at once: checked in a
subprocess with a detrex-shaped ``projects/`` folder on ``sys.path``, outside this repository."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import sys
from pathlib import Path

import projects.dino.modeling as detrex_dino
import projects.focus_detr.modeling as detrex_focus
from detrkit.config import LazyConfig
from detrkit_projects.focus_detr.modeling import FocusDETRTransformer

root = Path(sys.argv[1])
assert detrex_dino.DETREX_DINO and detrex_focus.DETREX_FOCUS
assert list(map(Path, sys.modules["projects"].__path__)) == [root / "projects"]
# one of our configs (which imports detrkit_projects) loads beside them; no module of ours is 'projects.*'
cfg = LazyConfig.load(sys.argv[2])
assert cfg.model.transformer._target_ is FocusDETRTransformer
foreign = [
    name
    for name, module in sys.modules.items()
    if name.split(".")[0] == "projects"
    and root not in Path(module.__file__ or next(iter(module.__path__))).parents
]
assert not foreign, foreign
print("both loaded")
"""


def test_detrex_projects_and_ours_load_in_one_process(tmp_path):
    detrex = tmp_path / "detrex"
    for name, marker in (("dino", "DETREX_DINO"), ("focus_detr", "DETREX_FOCUS")):
        modeling = detrex / "projects" / name / "modeling"  # namespace packages, as in detrex
        modeling.mkdir(parents=True)
        (modeling / "__init__.py").write_text(f"{marker} = True\n")
    config = REPO / "projects" / "focus_detr" / "configs" / "focus_detr_r50_4scale_12ep.py"
    result = subprocess.run(
        [sys.executable, "-P", "-c", textwrap.dedent(CHECK), str(detrex), str(config)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(detrex), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "both loaded" in result.stdout
