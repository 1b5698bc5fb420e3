"""The official Salience DETR -> detrkit key mapping, on a state dict with the official names and shapes
(data/salience_detr_resnet50_800_1333_keys.json, read off xiuqhou/Salience-DETR's
`salience_detr_resnet50_800_1333.py` model, 91 classes)."""

import json
from pathlib import Path

import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import CONVERTERS
from detrkit_projects.salience_detr.modeling.checkpoint_conversion import DERIVED

HERE = Path(__file__).parent
CONFIG = HERE.parents[2] / "projects" / "salience_detr" / "configs" / "salience_detr_r50_4scale_12ep.py"


def test_every_official_tensor_lands_on_a_parameter_of_the_same_shape():
    shapes = json.loads((HERE / "data" / "salience_detr_resnet50_800_1333_keys.json").read_text())
    official = {name: torch.full(shape, float(i)) for i, (name, shape) in enumerate(shapes.items())}
    for (
        name
    ) in official:  # one module in the official model: `self.encoder.enhance_mcsp = self.encoder_class_head`
        if name.startswith("transformer.encoder.enhance_mcsp."):
            official[name] = official[name.replace("encoder.enhance_mcsp.", "encoder_class_head.")]
    converted = CONVERTERS["salience-detr"].to_detrkit(official)
    cfg = LazyConfig.load(str(CONFIG))
    cfg.model.device = "cpu"
    cfg.model.num_classes = 91
    model = instantiate(cfg.model)
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()
    assert set(DERIVED) <= set(shapes)

    def came_from(name: str, official_name: str) -> bool:
        return bool(ours[name].eq(float(list(shapes).index(official_name))).all())

    pairs = {
        "neck.extra_convs.0.conv.weight": "neck.convs.3.0.weight",
        "transformer.token_scorer.alpha": "transformer.alpha",
        "transformer.token_scorer.predictor.head.4.bias": "transformer.enc_mask_predictor.layer2.4.bias",
        "transformer.encoder.layers.2.object_norm.weight": "transformer.encoder.layers.2.pre_norm.weight",
        "transformer.encoder.layers.2.attentions.0.attn.in_proj_weight": (
            "transformer.encoder.layers.2.pre_attention.in_proj_weight"
        ),
        "transformer.encoder.layers.2.norms.1.weight": "transformer.encoder.layers.2.norm2.weight",
        "transformer.decoder.layers.4.norms.0.weight": "transformer.decoder.layers.4.norm2.weight",
        "transformer.decoder.layers.4.attentions.1.value_proj.weight": (
            "transformer.decoder.layers.4.cross_attn.value_proj.weight"
        ),
        "class_embed.3.weight": "transformer.decoder.class_head.3.weight",
        "class_embed.6.bias": "transformer.encoder_class_head.bias",
        "bbox_embed.6.layers.2.weight": "transformer.encoder_bbox_head.layers.2.weight",
        "transformer.query_selector.tgt_embed.weight": "transformer.tgt_embed.weight",
        "transformer.background_embedding.embedding.col_embed.weight": (
            "transformer.encoder.background_embedding.col_embed.weight"
        ),
        "transformer.token_fusion.pan_blocks.1.bottlenecks.2.context_gate.transform.2.weight": (
            "transformer.neck.pan_blocks.1.bottlenecks.2.se_module.se_module.2.weight"
        ),
        "label_enc.weight": "denoising_generator.label_encoder.weight",
    }
    for ours_name, official_name in pairs.items():
        assert came_from(ours_name, official_name), ours_name
