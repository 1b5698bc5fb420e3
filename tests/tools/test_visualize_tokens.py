"""tools/visualize.py --tokens on Salience DETR and Focus-DETR (their shapes configs, random weights): the
hooks capture the transformer's own token logits, the kept tokens follow each method's budget, and the
drawn maps are the scores at the right places."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import LazyConfig, instantiate
from detrkit.utils.token_visualizer import CAPTION_HEIGHT, heat_colors

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "visualize.py"
SALIENCE = "projects/salience_detr/configs/salience_detr_shapes.py"
FOCUS = "projects/focus_detr/configs/focus_detr_shapes.py"
SIZE = 128  # strides 8/16/32: levels of 16x16, 8x8 and 4x4 = 336 tokens, no padding


def load_tool():
    spec = importlib.util.spec_from_file_location("visualize_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_model(config: str) -> torch.nn.Module:
    cfg = LazyConfig.load(str(REPO / config))
    cfg.model.device = "cpu"
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the zero-initialised biases and heads matter, scores differ between tokens
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return model


def random_input() -> dict:
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, SIZE, SIZE), generator=generator, dtype=torch.uint8)
    return {"image": image, "height": SIZE, "width": SIZE}


@pytest.fixture(scope="module", params=[SALIENCE, FOCUS])
def captured(request):
    """(config, model, what the tool captured, the token logits the transformer returned)."""
    model = random_model(request.param)
    returned = {}
    hook = model.transformer.register_forward_hook(
        lambda m, a, out: returned.update(logits=out.extras.logits)
    )
    try:
        outputs = load_tool().capture_token_outputs(model, random_input())
    finally:
        hook.remove()
    return request.param, model, outputs, returned


def test_captures_the_logits_the_transformer_returns(captured):
    _, model, outputs, returned = captured
    assert outputs["spatial_shapes"].tolist() == [[16, 16], [8, 8], [4, 4]]
    assert not outputs["padding_mask"].any()
    torch.testing.assert_close(outputs["token_logits"], returned["logits"][0])


def test_kept_tokens_follow_the_method_budget(captured):
    config, _, outputs, _ = captured
    logits, kept = outputs["token_logits"], outputs["kept"]
    if config == FOCUS:  # int(336 * 0.5) + 1 tokens, the best by foreground logit
        expected = logits.topk(169).indices
    else:  # per level int(valid * ratio) of ratios (0.4, 0.8, 1.0): 102 + 51 + 16, the level's best
        expected = torch.cat(
            [
                part.topk(k).indices + start
                for part, k, start in zip(
                    logits.split([256, 64, 16]), (102, 51, 16), (0, 256, 320), strict=True
                )
            ]
        )
    assert kept.sum() == 169
    assert kept[expected].all()


def test_selected_queries_are_proposal_boxes_in_the_image(captured):
    config, model, outputs, _ = captured
    count = len(outputs["query_indices"])
    if config == FOCUS:
        assert count == model.num_queries
    else:  # redundancy removal may leave fewer, never more, all distinct tokens
        assert 0 < count <= model.num_queries
    assert len(set(outputs["query_indices"].tolist())) == count
    assert outputs["query_boxes"].shape == (count, 4) and outputs["query_classes"].shape == (count,)
    assert ((outputs["query_boxes"] >= 0) & (outputs["query_boxes"] <= 1)).all()


def test_score_panels_draw_each_level_sigmoid_at_its_tokens(captured):
    config, model, outputs, _ = captured
    gray = np.full((SIZE, SIZE, 3), 100, dtype=np.uint8)  # blended intensity = 0.65 * heat + 0.35 * 100
    pictures = load_tool().token_pictures(gray, outputs, model.transformer.score_name)
    assert sorted(pictures) == ["kept_tokens", "selected_queries", "token_scores"]
    assert [len(pictures[k]) for k in ("token_scores", "kept_tokens", "selected_queries")] == [3, 3, 1]
    assert all(p.size == (SIZE, SIZE + CAPTION_HEIGHT) for panels in pictures.values() for p in panels)
    probabilities = outputs["token_logits"].sigmoid().split([256, 64, 16])
    for panel, level_probabilities, side in zip(
        pictures["token_scores"], probabilities, (16, 8, 4), strict=True
    ):
        stride = SIZE // side
        centres = np.arange(side) * stride + stride // 2
        pixels = np.asarray(panel).astype(float)[CAPTION_HEIGHT:][np.ix_(centres, centres)]
        expected = 0.65 * heat_colors(level_probabilities.reshape(side, side).numpy()) + 0.35 * 100
        np.testing.assert_allclose(pixels, expected, atol=0.51)


@pytest.fixture(scope="module")
def command_line(tmp_path_factory):
    """Runs tools/visualize.py with a random Focus-DETR checkpoint, on a shapes_val made in a temp folder."""
    folder = tmp_path_factory.mktemp("visualize")
    DetectionCheckpointer(random_model(FOCUS), save_dir=str(folder)).save("model")
    env = {**os.environ, "DETRKIT_DATASETS": str(folder / "datasets"), "OMP_NUM_THREADS": "1"}

    def run(*args: str) -> None:
        command = [
            sys.executable,
            str(TOOL),
            "--config-file",
            FOCUS,
            "--checkpoint",
            str(folder / "model.pth"),
        ]
        subprocess.run([*command, *args, "train.device=cpu"], cwd=REPO, env=env, check=True)

    return folder, run


def test_command_line_writes_the_three_token_pictures(command_line):
    folder, run = command_line
    run("--tokens", "--out", str(folder / "vis"), "--index", "2")
    # shapes_val images are 256 px, tested at 288 px: one 288x302 panel per level (cells have 4 px gaps)
    sizes = {p.name: Image.open(p).size for p in (folder / "vis").iterdir()}
    assert sizes == {
        "token_scores.png": (3 * 292, 306),
        "kept_tokens.png": (3 * 292, 306),
        "selected_queries.png": (292, 306),
    }


def test_command_line_still_draws_predictions_beside_ground_truth(command_line):
    folder, run = command_line
    run("--out", str(folder / "predictions.png"), "--num-images", "3", "--score-threshold", "0.5")
    # 2 columns of (256 + 4 + 256) x (256 + titles) pairs in the original image size, 4 px gaps, 2 rows
    assert Image.open(folder / "predictions.png").size == (2 * 520, 2 * (260 + CAPTION_HEIGHT))
