"""Checkpoint conversion both ways: tools/convert_checkpoint.py (--from official -> detrkit, --to detrkit ->
official, every project's registered format, files read without running code from them) and the round
trips of every format on the recorded official key lists (tests/projects/*/data, read off the official
models)."""

import functools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import CONVERTERS

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "convert_checkpoint.py"
PROJECTS = REPO / "tests" / "projects"

# format -> (recorded official keys and shapes, the detrkit config of the same model, its num_classes)
LAYOUTS = {
    "detrex-dino": (
        "dino/data/detrex_dino_r50_4scale_keys.json",
        "projects/dino/configs/dino_r50_4scale_12ep.py",
        80,
    ),
    "detrex-h-deformable-detr": (
        "dino/data/detrex_h_deformable_detr_r50_two_stage_keys.json",
        "projects/dino/configs/h_deformable_detr_r50_two_stage_12ep.py",
        80,
    ),
    "detrex-focus-detr": (
        "focus_detr/data/detrex_focus_detr_r50_4scale_keys.json",
        "projects/focus_detr/configs/focus_detr_r50_4scale_12ep.py",
        80,
    ),
    "rank-detr": (
        "rank_detr/data/rank_detr_r50_two_stage_keys.json",
        "projects/rank_detr/configs/rank_detr_r50_two_stage_12ep.py",
        80,
    ),
    "salience-detr": (
        "salience_detr/data/salience_detr_resnet50_800_1333_keys.json",
        "projects/salience_detr/configs/salience_detr_r50_4scale_12ep.py",
        91,
    ),
}


def run_tool(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def converters():
    sys.path.insert(0, str(TOOL.parent))
    try:
        from convert_checkpoint import register_project_converters
    finally:
        sys.path.remove(str(TOOL.parent))
    register_project_converters()
    return CONVERTERS


def recorded_keys(layout: str) -> dict[str, list[int]]:
    return json.loads((PROJECTS / LAYOUTS[layout][0]).read_text())


@functools.cache
def detrkit_model(layout: str) -> torch.nn.Module:
    """The detrkit model of ``layout`` (random weights; built once per layout)."""
    cfg = LazyConfig.load(str(REPO / LAYOUTS[layout][1]))
    cfg.model.device = "cpu"
    cfg.model.num_classes = LAYOUTS[layout][2]
    return instantiate(cfg.model)


# official modules registered under two names (their recorded keys hold one tensor): Salience DETR's
# ``self.encoder.enhance_mcsp = self.encoder_class_head``
OFFICIAL_ALIASES = {"transformer.encoder.enhance_mcsp.": "transformer.encoder_class_head."}


def numbered(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """A tensor of each shape holding its key's index (a broadcast scalar: no memory); aliases share one."""
    tensors = {name: torch.tensor(float(i)).expand(shape) for i, (name, shape) in enumerate(shapes.items())}
    for alias, name in OFFICIAL_ALIASES.items():
        for key in tensors:
            if key.startswith(alias):
                tensors[key] = tensors[name + key[len(alias) :]]
    return tensors


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_to_detrkit_to_official_gives_the_official_state_dict_back(converters, layout):
    official = numbered(recorded_keys(layout))
    model = detrkit_model(layout)
    converter = converters[layout]
    ours = converter.to_detrkit(official)
    assert {name: list(t.shape) for name, t in ours.items()} == {
        name: list(t.shape) for name, t in model.state_dict().items()
    }
    back = converter.to_official(ours, model)
    assert set(back) == set(official)
    for name, tensor in official.items():
        if name in converter.derived:  # rebuilt from the model's config, checked below
            assert back[name].shape == tensor.shape, name
        else:
            assert torch.equal(back[name], tensor), name


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_detrkit_to_official_to_detrkit_is_the_identity(converters, layout):
    model = detrkit_model(layout)
    ours = model.state_dict()
    official = CONVERTERS[layout].to_official(ours, model)
    assert {name: list(t.shape) for name, t in official.items()} == recorded_keys(layout)
    back = CONVERTERS[layout].to_detrkit(official)
    assert set(back) == set(ours)
    assert all(torch.equal(back[name], ours[name]) for name in ours)


def test_salience_detr_constants_are_rebuilt_from_the_model(converters):
    model = detrkit_model("salience-detr")
    ours = model.state_dict()
    official = CONVERTERS["salience-detr"].to_official(ours, model)
    # the official PositionEmbeddingSine(128, temperature=10000): 10000 ** (2 * (i // 2) / 128)
    expected = torch.tensor([10000 ** (2 * (i // 2) / 128) for i in range(128)], dtype=torch.float32)
    torch.testing.assert_close(official["position_embedding.dim_tx"], expected)
    assert torch.equal(official["position_embedding.dim_ty"], official["position_embedding.dim_tx"])
    assert official["transformer.level_filter_ratio"].tolist() == pytest.approx([0.4, 0.8, 1.0, 1.0])
    assert official["transformer.layer_filter_ratio"].tolist() == pytest.approx(
        [1.0, 0.8, 0.6, 0.6, 0.4, 0.2]
    )
    with pytest.raises(ValueError, match=r"position_embedding\.dim_tx.*--config-file"):
        CONVERTERS["salience-detr"].to_official(ours)
    # on the way in, given the model, the official constants must be the ones its config gives
    assert CONVERTERS["salience-detr"].to_detrkit(official, model).keys() == ours.keys()
    official["transformer.level_filter_ratio"] = torch.tensor([0.25, 0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"transformer\.level_filter_ratio = \[0\.25, 0\.5, 1\.0, 1\.0\]"):
        CONVERTERS["salience-detr"].to_detrkit(official, model)


def test_focus_detr_alpha_order_is_reversed_both_ways(converters):
    official = numbered(recorded_keys("detrex-focus-detr"))
    official["transformer.alpha"] = torch.tensor([1.0, 2.0, 3.0])
    ours = CONVERTERS["detrex-focus-detr"].to_detrkit(official)
    assert ours["transformer.token_scorer.alpha"].tolist() == [3.0, 2.0, 1.0]
    model = detrkit_model("detrex-focus-detr")
    assert CONVERTERS["detrex-focus-detr"].to_official(ours, model)["transformer.alpha"].tolist() == [
        1.0,
        2.0,
        3.0,
    ]


def test_what_cannot_be_converted_back_is_refused_by_name(converters):
    ours = CONVERTERS["salience-detr"].to_detrkit(numbered(recorded_keys("salience-detr")))
    model = detrkit_model("salience-detr")
    # the official layout names detrkit's extra_convs.0 neck.convs.3: a fourth backbone level cannot exist
    ours["neck.convs.3.conv.weight"] = ours["neck.extra_convs.0.conv.weight"]
    with pytest.raises(ValueError, match=r"and back does not give \['neck\.convs\.3\.conv\.weight'\]"):
        CONVERTERS["salience-detr"].to_official(ours, model)
    del ours["neck.convs.3.conv.weight"]
    # the official encoder class head is one module; detrkit's aliases of it must agree
    ours["encoder_class_heads.2.bias"] = ours["encoder_class_heads.2.bias"] + 1
    with pytest.raises(ValueError, match=r"encoder_class_heads\.2\.bias' both become .* different tensors"):
        CONVERTERS["salience-detr"].to_official(ours, model)
    with pytest.raises(ValueError, match=r"official key 'backbone\.res2_0_branch2a_w' matches none"):
        CONVERTERS["detrex-dino"].to_detrkit({"backbone.res2_0_branch2a_w": torch.zeros(1)})


def test_backbone_rules_agree_with_the_resnet_name_function(converters):
    from detrkit.modeling.backbone import detectron2_resnet_name_to_torchvision

    names = [name for name in recorded_keys("detrex-dino") if name.startswith("backbone.")]
    ours = CONVERTERS["detrex-dino"].to_detrkit({name: torch.zeros(()) for name in names})
    assert sorted(ours) == sorted(
        "backbone." + detectron2_resnet_name_to_torchvision(name[len("backbone.") :]) for name in names
    )


def test_converts_a_detrex_checkpoint_under_model(tmp_path):
    weight = torch.arange(6.0).view(2, 3)
    source = {
        "backbone.res2.0.conv1.norm.weight": weight,
        "transformer.enc_output.weight": weight + 1,
        "class_embed.0.bias": weight[0],
    }
    official = tmp_path / "official.pth"
    torch.save({"model": source, "iteration": 7}, official)
    output = tmp_path / "out.pth"
    result = run_tool("--from", "detrex-dino", "--input", str(official), "--output", str(output))
    assert result.returncode == 0, result.stderr
    converted = torch.load(output, weights_only=True)["model"]
    assert set(converted) == {
        "backbone.layer1.0.bn1.weight",
        "transformer.query_selector.enc_output.weight",
        "class_embed.0.bias",
    }
    assert torch.equal(converted["transformer.query_selector.enc_output.weight"], weight + 1)

    back = tmp_path / "back.pth"
    result = run_tool("--to", "detrex-dino", "--input", str(output), "--output", str(back))
    assert result.returncode == 0, result.stderr
    restored = torch.load(back, weights_only=True)["model"]
    assert set(restored) == set(source) and all(torch.equal(restored[k], source[k]) for k in source)


def test_to_salience_detr_needs_the_config(tmp_path):
    layout = "salience-detr"
    ours = tmp_path / "ours.pth"
    torch.save({"model": detrkit_model(layout).state_dict()}, ours)
    output = tmp_path / "official.pth"
    result = run_tool("--to", layout, "--input", str(ours), "--output", str(output))
    assert result.returncode == 1 and "transformer.level_filter_ratio" in result.stderr
    assert "--config-file" in result.stderr and not output.exists()
    # the recorded official model has 91 classes: the shipped config with that override
    config = tmp_path / "salience_80.py"
    shipped = str(REPO / LAYOUTS[layout][1])
    config.write_text(
        "from detrkit.config import LazyConfig\n"
        f"model = LazyConfig.load({shipped!r}).model\nmodel.num_classes = 91\n"
    )
    result = run_tool(
        "--to", layout, "--input", str(ours), "--output", str(output), "--config-file", str(config)
    )
    assert result.returncode == 0, result.stderr
    written = torch.load(output, weights_only=True)["model"]
    assert {name: list(t.shape) for name, t in written.items()} == recorded_keys(layout)


def test_unknown_format_lists_the_known_ones(tmp_path):
    result = run_tool("--from", "no-such-detector", "--input", "x.pth", "--output", str(tmp_path / "y.pth"))
    assert result.returncode != 0
    assert "no-such-detector" in result.stderr and "detrex-dino" in result.stderr


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def test_crafted_checkpoint_is_refused_unless_trusted(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "official.pth"
    torch.save({"model": {"class_embed.0.bias": torch.zeros(2)}, "meta": Payload(marker)}, crafted)
    output = tmp_path / "out.pth"
    args = ("--from", "detrex-dino", "--input", str(crafted), "--output", str(output))
    result = run_tool(*args, env={"DETRKIT_TRUST_PICKLE": ""})
    assert result.returncode == 1
    assert (
        f"{crafted}: refusing to unpickle posix.system" in result.stderr and "--trust-pickle" in result.stderr
    )
    assert not marker.exists() and not output.exists()
    result = run_tool(*args, "--trust-pickle")
    assert result.returncode == 0, result.stderr
    assert marker.exists() and "trusted" in result.stderr  # the opt-in unpickles in full, with a warning


def test_a_file_that_is_no_checkpoint_is_named(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    result = run_tool("--from", "detrex-dino", "--input", str(text), "--output", str(tmp_path / "o.pth"))
    assert result.returncode == 1
    assert f"{text}: neither a PyTorch checkpoint nor a pickle file" in result.stderr
    assert "Traceback" not in result.stderr
