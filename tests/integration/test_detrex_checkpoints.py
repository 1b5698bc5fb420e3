"""detrkit -> detrex weights against the real detrex: a detrkit model's state dict converted with
``convert_to_official`` loads into detrex's model with ``strict=True``, and both models, with the same
weights, give the same eval outputs on a random image (float64).

Runs where ``detectron2`` and ``detrex`` are importable and ``DETREX_ROOT`` names a detrex checkout (its
``projects/*/configs`` are loaded from there); skipped otherwise. R50 models on the CPU: about a minute.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import convert_to_official

REPO = Path(__file__).resolve().parents[2]
DETREX_ROOT = os.environ.get("DETREX_ROOT", "")

missing = [name for name in ("detectron2", "detrex") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(missing) or not Path(DETREX_ROOT, "projects").is_dir(),
    reason=f"needs detectron2 and detrex importable (missing: {missing}) and DETREX_ROOT (a detrex checkout)",
)

# format -> (detrex config under DETREX_ROOT, detrkit config, the module that registers the format)
LAYOUTS = {
    "detrex-dino": (
        "projects/dino/configs/dino-resnet/dino_r50_4scale_12ep.py",
        "projects/dino/configs/dino_r50_4scale_12ep.py",
        None,
    ),
    "detrex-h-deformable-detr": (
        "projects/h_deformable_detr/configs/h_deformable_detr_r50_two_stage_12ep.py",
        "projects/dino/configs/h_deformable_detr_r50_two_stage_12ep.py",
        None,
    ),
    "detrex-focus-detr": (
        "projects/focus_detr/configs/focus_detr_resnet/focus_detr_r50_4scale_12ep.py",
        "projects/focus_detr/configs/focus_detr_r50_4scale_12ep.py",
        "detrkit_projects.focus_detr.modeling.checkpoint_conversion",
    ),
}


@pytest.fixture
def detrex_projects(monkeypatch):
    """detrex's ``projects`` namespace (its configs import ``projects.<name>.modeling``) importable: this
    repository's root (on the path under ``python -m pytest``) would shadow it with the folder that is
    installed as ``detrkit_projects``."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or os.getcwd()).resolve() != REPO])
    for name in [name for name in sys.modules if name == "projects" or name.startswith("projects.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(DETREX_ROOT)
    monkeypatch.chdir(DETREX_ROOT)


def detrex_model(config: str) -> torch.nn.Module:
    from detectron2.config import LazyConfig as Detectron2LazyConfig
    from detectron2.config import instantiate as detectron2_instantiate

    cfg = Detectron2LazyConfig.load(str(Path(DETREX_ROOT, config)))
    cfg.model.device = "cpu"
    return detectron2_instantiate(cfg.model)


def detrkit_model(config: str) -> torch.nn.Module:
    cfg = LazyConfig.load(str(REPO / config))
    cfg.model.device = "cpu"
    return instantiate(cfg.model)


def max_output_difference(ours: torch.nn.Module, theirs: torch.nn.Module) -> dict[str, float]:
    """The largest differences of the eval outputs (boxes, scores, classes) on one random image."""
    generator = torch.Generator().manual_seed(0)
    # 384 x 512: 4080 encoder tokens, enough for Focus-DETR's 300 object tokens in its last encoder layer
    # (10% of them) and for the 900 queries
    image = torch.randint(0, 256, (3, 384, 512), generator=generator).to(torch.float64)
    inputs = [{"image": image, "height": 480, "width": 640}]
    outputs = []
    for model in (ours, theirs):
        model.double().eval()
        with torch.no_grad():
            outputs.append(model(inputs)[0]["instances"])
    a, b = outputs
    return {
        "boxes": (a.pred_boxes.tensor - b.pred_boxes.tensor).abs().max().item(),
        "scores": (a.scores - b.scores).abs().max().item(),
        "classes": (a.pred_classes != b.pred_classes).sum().item(),
    }


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_detrkit_weights_load_strictly_into_detrex_and_give_the_same_outputs(detrex_projects, layout):
    detrex_config, detrkit_config, registration = LAYOUTS[layout]
    if registration is not None:
        importlib.import_module(registration)
    torch.manual_seed(0)
    ours = detrkit_model(detrkit_config)
    theirs = detrex_model(detrex_config)
    official = convert_to_official(ours.state_dict(), layout, ours)
    theirs.load_state_dict(official, strict=True)
    differences = max_output_difference(ours, theirs)
    print(layout, differences)
    assert differences["classes"] == 0
    # scores agree to float64 rounding; Boxes hold float32 in both libraries (1 ulp at 640 px: 6.1e-5)
    assert differences["scores"] < 1e-12 and differences["boxes"] <= 1.3e-4, differences
