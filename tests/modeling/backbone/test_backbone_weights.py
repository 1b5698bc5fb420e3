"""Pretrained weights from local files: torchvision .pth and detectron2 .pkl, sha256 checks, and errors that
name the file."""

import hashlib
import logging
import pickle
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer as TorchvisionSwin

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.modeling.backbone import (
    MobileNetV2,
    ResNet,
    SwinTransformer,
    load_backbone_weights,
    read_state_dict,
    verify_sha256,
)


def randomized(model: nn.Module, seed: int) -> nn.Module:
    """``model`` with random parameters and batch-norm statistics (so a wrong mapping changes values)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point():
                tensor.normal_(0, 0.1)
    return model.eval()


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_loaded(backbone: nn.Module, reference: dict[str, torch.Tensor]) -> None:
    for name, value in backbone.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)


def test_torchvision_resnet_pth(tmp_path):
    reference = randomized(torchvision.models.resnet18(), seed=0)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), path)  # carries fc.* and num_batches_tracked
    backbone = load_backbone_weights(
        ResNet(18, out_features=("res4", "res5")), str(path), sha256=sha256_of(path)
    )
    assert_loaded(backbone, reference.state_dict())
    x = torch.randn(1, 3, 64, 64)
    expected = reference.layer4(
        reference.layer3(
            reference.layer2(
                reference.layer1(reference.maxpool(reference.relu(reference.bn1(reference.conv1(x)))))
            )
        )
    )
    torch.testing.assert_close(backbone(x)["res5"], expected, rtol=1e-5, atol=1e-5)


def test_detectron2_pkl(tmp_path):
    reference = randomized(torchvision.models.resnet50(), seed=1).state_dict()
    # detectron2's tools/convert-torchvision-to-d2.py layout: d2 names, numpy values, torchvision author
    d2_model = {}
    for name, value in reference.items():
        if name.endswith("num_batches_tracked"):
            continue
        d2_name = name if "layer" in name else "stem." + name
        for t in (1, 2, 3, 4):
            d2_name = d2_name.replace(f"layer{t}", f"res{t + 1}")
        for t in (1, 2, 3):
            d2_name = d2_name.replace(f"bn{t}", f"conv{t}.norm")
        d2_name = d2_name.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
        d2_model[d2_name] = value.numpy()
    assert "res2.0.conv1.norm.weight" in d2_model and "stem.conv1.norm.running_var" in d2_model
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": d2_model, "__author__": "torchvision", "matching_heuristics": True}, f)
    backbone = load_backbone_weights(ResNet(50, out_features=("res2", "res3", "res4", "res5")), str(path))
    assert_loaded(backbone, reference)


def test_backbone_of_a_detector_checkpoint_with_prefix(tmp_path):
    source = randomized(ResNet(18, out_features=("res3",)), seed=2)
    path = tmp_path / "model_final.pth"
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()} | {
        "neck.conv.weight": torch.zeros(1)
    }
    torch.save({"model": state, "iteration": 9}, path)
    backbone = load_backbone_weights(ResNet(18, out_features=("res3",)), str(path), prefix="backbone.")
    assert_loaded(backbone, source.state_dict())


def test_detection_checkpointer_loads_torchvision_weights_into_a_detector(tmp_path):
    reference = randomized(torchvision.models.resnet18(), seed=3)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    detector = nn.Module()
    detector.backbone = ResNet(18, out_features=("res3", "res4", "res5"))
    detector.head = nn.Linear(4, 2)
    DetectionCheckpointer(detector).load(str(path))
    assert_loaded(detector.backbone, reference.state_dict())


def test_mobilenet_v2_pth_with_sha256(tmp_path):
    reference = randomized(torchvision.models.mobilenet_v2(), seed=4)
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(reference.state_dict(), path)
    digest = sha256_of(path)
    backbone = load_backbone_weights(MobileNetV2(norm="FrozenBN"), str(path), sha256=digest[:8])
    assert_loaded(backbone, reference.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(backbone(x)["res5"], reference.features(x), rtol=1e-5, atol=1e-5)


def test_swin_pth(tmp_path):
    reference = randomized(
        TorchvisionSwin([4, 4], 16, [2, 2, 2], [2, 2, 4], [4, 4], stochastic_depth_prob=0.0), 5
    )
    path = tmp_path / "swin.pth"
    torch.save(reference.state_dict(), path)
    backbone = SwinTransformer(
        embed_dim=16, depths=(2, 2, 2), num_heads=(2, 2, 4), window_size=4, out_indices=(1,)
    )
    load_backbone_weights(backbone.eval(), str(path))
    assert_loaded(
        backbone, {**reference.state_dict(), "norm1.weight": torch.ones(32), "norm1.bias": torch.zeros(32)}
    )
    x = torch.randn(1, 3, 32, 32)
    expected = reference.features[:4](x)  # patch embedding, stage 0, merging, stage 1 (channels last)
    expected = nn.functional.layer_norm(expected, (32,)).permute(0, 3, 1, 2)
    torch.testing.assert_close(backbone(x)["p1"], expected, rtol=1e-5, atol=1e-5)


def test_wrong_sha256_is_rejected_before_unpickling(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"weights\.pth: sha256 is [0-9a-f]{64}, expected 0123abcd"):
        read_state_dict(str(path), sha256="0123abcd")
    assert verify_sha256(str(path), sha256_of(path).upper()) == sha256_of(path)
    with pytest.raises(ValueError, match="hex digits"):
        verify_sha256(str(path), "b035")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_state_dict(str(tmp_path / "missing.pth"))


def test_incomplete_or_mismatched_weights_name_the_file_and_keys(tmp_path):
    state = randomized(torchvision.models.resnet18(), seed=6).state_dict()
    incomplete = tmp_path / "incomplete.pth"
    torch.save(OrderedDict((k, v) for k, v in state.items() if k != "layer2.0.conv1.weight"), incomplete)
    with pytest.raises(ValueError, match=r"incomplete\.pth.*missing \['layer2\.0\.conv1\.weight'\]"):
        load_backbone_weights(ResNet(18), str(incomplete))
    wrong_depth = tmp_path / "resnet18.pth"
    torch.save(state, wrong_depth)
    with pytest.raises(ValueError, match=r"resnet18\.pth: cannot load into ResNet"):
        load_backbone_weights(ResNet(50), str(wrong_depth))
    extra = tmp_path / "extra.pth"
    torch.save({**state, "layer1.0.se.weight": torch.zeros(3)}, extra)
    with pytest.raises(ValueError, match=r"unexpected \['layer1\.0\.se\.weight'\]"):
        load_backbone_weights(ResNet(18), str(extra))


def test_a_run_without_checkpoint_logs_the_pretrained_weights_it_starts_from(tmp_path, caplog):
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(randomized(torchvision.models.mobilenet_v2(), seed=5).state_dict(), path)
    digest = sha256_of(path)
    with caplog.at_level(logging.INFO):
        backbone = load_backbone_weights(MobileNetV2(norm="FrozenBN"), str(path), sha256=digest)
        detector = nn.ModuleDict({"backbone": backbone, "head": nn.Linear(2, 2)})
        assert DetectionCheckpointer(detector).load("") == {}
        DetectionCheckpointer(nn.Linear(2, 2)).load("")
    messages = [r.getMessage() for r in caplog.records]
    # torchvision's 314 entries less the classifier's weight and bias
    assert f"MobileNetV2: loaded 312 pretrained tensors from {path} (sha256 {digest} verified)" in messages
    assert (
        f"No checkpoint to load: the model starts as built, with pretrained weights in backbone from {path} "
        f"(sha256 {digest}), the other parameters randomly initialised" in messages
    )
    assert "No checkpoint to load: the model starts from its random initialisation" in messages
    assert not any("from scratch" in m for m in messages)
