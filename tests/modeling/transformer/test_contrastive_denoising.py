"""DINO contrastive denoising on a hand-made batch: 2 images with 1 and 3 GT boxes."""

import torch
from torch import nn

from detrkit.layers.logits import inverse_sigmoid
from detrkit.modeling.transformer import ContrastiveDenoising, denoising_attn_mask
from detrkit.structures.box_ops import box_cxcywh_to_xyxy

NUM_CLASSES, EMBED_DIM, NUM_QUERIES = 5, 8, 4


def hand_made_targets():
    return [
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.4]])},
        {
            "labels": torch.tensor([0, 4, 1]),
            "boxes": torch.tensor([[0.3, 0.3, 0.1, 0.1], [0.6, 0.4, 0.2, 0.2], [0.5, 0.7, 0.3, 0.1]]),
        },
    ]


def label_enc():
    torch.manual_seed(0)
    return nn.Embedding(NUM_CLASSES, EMBED_DIM)


def test_groups_and_query_layout_without_noise():
    targets = hand_made_targets()
    enc = label_enc()
    denoising = ContrastiveDenoising(dn_number=100, label_noise_ratio=0.0, box_noise_scale=0.0)
    labels, boxes, attn_mask, meta = denoising(targets, NUM_QUERIES, NUM_CLASSES, enc)
    groups = 100 // 3  # dn_number // most GT in an image
    pad = groups * 2 * 3
    assert meta == {"single_padding": 6, "dn_num": groups}
    assert labels.shape == (2, pad, EMBED_DIM) and boxes.shape == (2, pad, 4)
    assert attn_mask.shape == (pad + NUM_QUERIES, pad + NUM_QUERIES)
    for g in range(groups):
        for half in (0, 1):  # positives, then negatives
            start = g * 6 + half * 3
            for image, target in enumerate(targets):
                n = len(target["labels"])
                torch.testing.assert_close(labels[image, start : start + n], enc(target["labels"]))
                torch.testing.assert_close(boxes[image, start : start + n], inverse_sigmoid(target["boxes"]))
                # unused slots of an image with fewer GT stay zero
                assert (labels[image, start + n : start + 3] == 0).all()
                assert (boxes[image, start + n : start + 3] == 0).all()


def test_attention_mask_blocks_leaks_between_groups_and_into_matching_queries():
    _, _, attn_mask, meta = ContrastiveDenoising(dn_number=6)(
        hand_made_targets(), NUM_QUERIES, NUM_CLASSES, label_enc()
    )
    assert meta["dn_num"] == 2  # 6 // 3
    pad = 2 * 6
    group = [q // 6 for q in range(pad)]
    for row in range(pad + NUM_QUERIES):
        for col in range(pad + NUM_QUERIES):
            if row >= pad:  # matching query: sees matching queries only
                expected_blocked = col < pad
            elif col >= pad:  # denoising query: sees every matching query
                expected_blocked = False
            else:  # denoising query: sees its own group (positives and negatives) only
                expected_blocked = group[row] != group[col]
            assert attn_mask[row, col].item() == expected_blocked, (row, col)
    torch.testing.assert_close(attn_mask, denoising_attn_mask(2, 6, NUM_QUERIES))


def test_box_noise_positives_inside_negatives_outside_one_half_size():
    torch.manual_seed(1)
    targets = hand_made_targets()
    _, boxes, _, meta = ContrastiveDenoising(dn_number=300, label_noise_ratio=0.0, box_noise_scale=0.5)(
        targets, NUM_QUERIES, NUM_CLASSES, label_enc()
    )
    gt = targets[1]["boxes"]  # image 1 fills every slot; its boxes stay inside [0, 1] under this noise
    half_sizes = gt[:, 2:].repeat(1, 2) / 2
    for g in range(meta["dn_num"]):
        for half, (low, high) in enumerate([(0.0, 0.5), (0.5, 1.0)]):
            start = g * 6 + half * 3
            noised = box_cxcywh_to_xyxy(boxes[1, start : start + 3].sigmoid())
            shift = (noised - box_cxcywh_to_xyxy(gt)).abs() / half_sizes  # in half-sizes
            assert (shift >= low - 1e-4).all() and (shift < high + 1e-4).all(), (g, half, shift)


def test_label_noise_flips_about_half_the_ratio():
    torch.manual_seed(0)
    targets = [{"labels": torch.zeros(50, dtype=torch.long), "boxes": torch.full((50, 4), 0.5)}]
    labels, _, _, meta = ContrastiveDenoising(dn_number=1000, label_noise_ratio=0.5, box_noise_scale=0.0)(
        targets, NUM_QUERIES, NUM_CLASSES, label_enc()
    )
    enc = label_enc()
    assert meta["dn_num"] == 20
    # which label each query embeds: the closest row of the embedding table
    chosen = torch.cdist(labels[0], enc.weight).argmin(-1)
    changed = (chosen != 0).float().mean().item()
    # P(flip) = 0.25 and a flip lands on class 0 again with p = 1/5 -> 0.2 change
    assert 0.17 < changed < 0.23


def test_no_denoising_without_gt_or_budget():
    empty = [{"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}]
    assert ContrastiveDenoising()(empty, NUM_QUERIES, NUM_CLASSES, label_enc()) == (None, None, None, None)
    assert ContrastiveDenoising(dn_number=0)(hand_made_targets(), NUM_QUERIES, NUM_CLASSES, label_enc()) == (
        None,
        None,
        None,
        None,
    )


def test_more_gt_than_budget_still_makes_one_group():
    _, _, _, meta = ContrastiveDenoising(dn_number=2)(
        hand_made_targets(), NUM_QUERIES, NUM_CLASSES, label_enc()
    )
    assert meta == {"single_padding": 6, "dn_num": 1}


def test_label_embedding_receives_gradients():
    enc = label_enc()
    labels, _, _, _ = ContrastiveDenoising()(hand_made_targets(), NUM_QUERIES, NUM_CLASSES, enc)
    labels.sum().backward()
    assert enc.weight.grad is not None and enc.weight.grad.abs().sum() > 0
