"""Backbones with detectron2's interface (named multi-level outputs, ``output_shape()``, freezing) built from
torchvision's models, and loaders of their pretrained weights from local files."""

from detrkit.modeling.backbone.backbone import Backbone, StagedBackbone, freeze_module, norm_factory
from detrkit.modeling.backbone.mobilenet import MobileNetV2
from detrkit.modeling.backbone.resnet import (
    ResNet,
    convert_detectron2_resnet_names,
    detectron2_resnet_name_to_torchvision,
)
from detrkit.modeling.backbone.swin import SwinTransformer
from detrkit.modeling.backbone.weights import load_backbone_weights, read_state_dict, verify_sha256

__all__ = [
    "Backbone",
    "MobileNetV2",
    "ResNet",
    "StagedBackbone",
    "SwinTransformer",
    "convert_detectron2_resnet_names",
    "detectron2_resnet_name_to_torchvision",
    "freeze_module",
    "load_backbone_weights",
    "norm_factory",
    "read_state_dict",
    "verify_sha256",
]
