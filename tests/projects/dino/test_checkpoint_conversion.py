"""The detrex -> detrkit key mapping, on state dicts with the official names and shapes (listed in data/,
read off detrex's DINO R50 4-scale and H-Deformable-DETR R50 two-stage models)."""

import json
from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import convert_state_dict

HERE = Path(__file__).parent
CONFIGS = HERE.parents[2] / "projects" / "dino" / "configs"


@pytest.mark.parametrize(
    "source, keys, config",
    [
        ("detrex-dino", "detrex_dino_r50_4scale_keys.json", "dino_r50_4scale_12ep.py"),
        (
            "detrex-h-deformable-detr",
            "detrex_h_deformable_detr_r50_two_stage_keys.json",
            "h_deformable_detr_r50_two_stage_12ep.py",
        ),
    ],
)
def test_every_official_tensor_lands_on_a_parameter_of_the_same_shape(source, keys, config):
    shapes = json.loads((HERE / "data" / keys).read_text())
    official = {name: torch.full(shape, float(i)) for i, (name, shape) in enumerate(shapes.items())}
    converted = convert_state_dict(official, source)
    cfg = LazyConfig.load(str(CONFIGS / config))
    cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()
    # Each tensor arrived intact under its new name (the fill value identifies the official tensor).
    assert (
        ours["backbone.layer1.0.bn1.weight"]
        .eq(float(list(shapes).index("backbone.res2.0.conv1.norm.weight")))
        .all()
    )
    assert (
        ours["transformer.query_selector.enc_output.weight"]
        .eq(float(list(shapes).index("transformer.enc_output.weight")))
        .all()
    )


def test_unknown_source_is_named():
    with pytest.raises(ValueError, match="unknown checkpoint source 'nope'"):
        convert_state_dict({}, "nope")
