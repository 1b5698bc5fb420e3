"""The official Rank-DETR -> detrkit key mapping, on a state dict with the official names and shapes
(data/rank_detr_r50_two_stage_keys.json, read off LeapLabTHU/Rank-DETR's `rank_detr_r50_two_stage_12ep.py`
model)."""

import json
from pathlib import Path

import torch

import detrkit_projects.rank_detr.modeling.checkpoint_conversion  # noqa: F401  (registers "rank-detr")
from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import CONVERTERS, convert_state_dict

HERE = Path(__file__).parent
CONFIG = HERE.parents[2] / "projects" / "rank_detr" / "configs" / "rank_detr_r50_two_stage_12ep.py"


def test_every_official_tensor_lands_on_a_parameter_of_the_same_shape():
    shapes = json.loads((HERE / "data" / "rank_detr_r50_two_stage_keys.json").read_text())
    index = {name: i for i, name in enumerate(shapes)}
    official = {name: torch.full(shape, float(i)) for i, (name, shape) in enumerate(shapes.items())}
    cfg = LazyConfig.load(str(CONFIG))
    cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    model.load_state_dict(convert_state_dict(official, "rank-detr"), strict=True)
    ours = model.state_dict()
    # each tensor arrived intact under its new name (the fill value identifies the official tensor)
    for detrkit_name, official_name in [
        ("backbone.layer1.0.bn1.weight", "backbone.res2.0.conv1.norm.weight"),
        ("transformer.query_selector.pos_trans.weight", "transformer.pos_trans.weight"),
        (
            "transformer.decoder.between_layers.rank_layers.3.rank_content.weight",
            "transformer.decoder.rank_aware_content_query.3.weight",
        ),
        (
            "transformer.decoder.between_layers.rank_layers.0.content_proj.bias",
            "transformer.decoder.pre_racq_trans.0.bias",
        ),
        (
            "transformer.decoder.between_layers.rank_layers.4.fuse.weight",
            "transformer.decoder.post_racq_trans.4.weight",
        ),
        ("class_bias.5.weight", "rank_adaptive_classhead_emb.5.weight"),
    ]:
        assert ours[detrkit_name].eq(float(index[official_name])).all(), detrkit_name


def test_registered_for_the_conversion_tool():
    assert "rank-detr" in CONVERTERS
