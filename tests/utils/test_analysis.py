"""FLOP and parameter counting against hand-computed counts on a tiny detector."""

import torch
from torch import nn

from detrkit.layers import multi_scale_deformable_attn
from detrkit.structures import Boxes, Instances
from detrkit.utils.analysis import flop_count, trainable_parameter_count

HEIGHT, WIDTH, CHANNELS, HEADS, QUERIES, POINTS = 6, 10, 8, 2, 5, 3


class TinyDetector(nn.Module):
    """1x1 conv -> deformable attention over the feature map -> linear scores, detectron2 I/O."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, CHANNELS, kernel_size=1)
        self.score = nn.Linear(CHANNELS, 1)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.register_buffer("locations", torch.rand(1, QUERIES, HEADS, 1, POINTS, 2))
        self.register_buffer("weights", torch.rand(1, QUERIES, HEADS, 1, POINTS).softmax(-1))

    def forward(self, batched_inputs):
        image = batched_inputs[0]["image"].float()[None]
        features = self.conv(image)  # (1, C, H, W)
        value = features.flatten(2).transpose(1, 2).reshape(1, HEIGHT * WIDTH, HEADS, CHANNELS // HEADS)
        shapes, starts = torch.tensor([[HEIGHT, WIDTH]]), torch.tensor([0])
        sampled = multi_scale_deformable_attn(value, shapes, starts, self.locations, self.weights)
        scores = self.score(sampled)[0, :, 0]
        boxes = Boxes(self.locations[0, :, 0, 0, 0].repeat(1, 2))
        instances = Instances((HEIGHT, WIDTH), pred_boxes=boxes, scores=scores, pred_classes=scores.long())
        return [{"instances": instances}]


def test_flops_match_the_hand_count():
    conv = HEIGHT * WIDTH * 3 * CHANNELS  # one multiply-add per input channel per output element
    deform = 5 * QUERIES * HEADS * 1 * POINTS * (CHANNELS // HEADS)  # 4 bilinear corners + 1 weight
    linear = QUERIES * CHANNELS * 1
    gflops, by_operator = flop_count(TinyDetector(), torch.zeros(3, HEIGHT, WIDTH, dtype=torch.uint8))
    assert gflops * 1e9 == conv + deform + linear
    assert by_operator["ms_deform_attn_forward"] * 1e9 == deform


def test_trainable_parameters_exclude_frozen_ones():
    model = TinyDetector()
    assert trainable_parameter_count(model) == (3 * CHANNELS + CHANNELS) + (CHANNELS + 1)
