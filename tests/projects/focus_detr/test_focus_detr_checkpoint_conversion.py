"""The detrex Focus-DETR -> detrkit key mapping, on a state dict with the official names and shapes
(data/detrex_focus_detr_r50_4scale_keys.json, read off detrex's `focus_detr_r50_4scale_12ep.py` model)."""

import json
from pathlib import Path

import torch

import detrkit_projects.focus_detr.modeling.checkpoint_conversion  # noqa: F401  (registers "detrex-focus-detr")
from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import convert_state_dict

HERE = Path(__file__).parent
CONFIG = HERE.parents[2] / "projects" / "focus_detr" / "configs" / "focus_detr_r50_4scale_12ep.py"


def test_every_official_tensor_lands_on_a_parameter_of_the_same_shape():
    shapes = json.loads((HERE / "data" / "detrex_focus_detr_r50_4scale_keys.json").read_text())
    official = {name: torch.full(shape, float(i)) for i, (name, shape) in enumerate(shapes.items())}
    official["transformer.alpha"] = torch.tensor([1.0, 2.0, 3.0])  # detrex: coarse to fine
    converted = convert_state_dict(official, "detrex-focus-detr")
    cfg = LazyConfig.load(str(CONFIG))
    cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()

    def came_from(name: str, official_name: str) -> bool:
        return bool(ours[name].eq(float(list(shapes).index(official_name))).all())

    assert came_from(
        "transformer.token_scorer.predictor.embed.1.weight", "transformer.enc_mask_predictor.layer1.1.weight"
    )
    assert came_from(
        "transformer.token_scorer.predictor.head.4.bias", "transformer.enc_mask_predictor.layer2.4.bias"
    )
    assert came_from(
        "transformer.encoder.layers.3.object_norm.weight", "transformer.encoder.layers.3.norm2.weight"
    )
    assert came_from("transformer.query_selector.enc_output.weight", "transformer.enc_output.weight")
    # detrkit indexes alpha by the finer level: level 0 (modulated last in detrex) gets detrex's alpha[2]
    assert ours["transformer.token_scorer.alpha"].tolist() == [3.0, 2.0, 1.0]
