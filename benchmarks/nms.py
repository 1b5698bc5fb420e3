"""detrkit's batched NMS vs torchvision.ops.batched_nms on Salience DETR's redundancy removal.

The workload: 2 images x 4 levels of a DINO encoder at 800x1200 ((100,150),(50,75),(25,38),(13,19)), 3600
proposals per (image, level), each a token's cell grown by one cell on every side ([x-1, y-1, x+1, y+1] in the
level's grid units), random scores, IoU threshold 0.3, one group per (image, level). Levels smaller than 3600
cells repeat cells, as top-k proposals over all levels would not, so the small levels are the harder case.

    python benchmarks/nms.py [--threads 2] [--repeats 7] [--json]
"""

import torch
import torchvision
from common import machine_description, main, median_seconds

import detrkit
from detrkit.layers import batched_nms

LEVELS = ((100, 150), (50, 75), (25, 38), (13, 19))
IMAGES, PROPOSALS, IOU_THRESHOLD = 2, 3600, 0.3


def make_inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    boxes, scores, groups = [], [], []
    for image in range(IMAGES):
        for level, (h, w) in enumerate(LEVELS):
            cell = torch.randint(0, h * w, (PROPOSALS,), generator=generator)
            x, y = (cell % w).float(), (cell // w).float()
            boxes.append(torch.stack([x - 1, y - 1, x + 1, y + 1], -1))
            scores.append(torch.rand(PROPOSALS, generator=generator))
            groups.append(torch.full((PROPOSALS,), image * len(LEVELS) + level))
    return torch.cat(boxes), torch.cat(scores), torch.cat(groups)


def run(threads: int, repeats: int) -> dict:
    torch.set_num_threads(threads)
    boxes, scores, groups = make_inputs()
    ours = batched_nms(boxes, scores, groups, IOU_THRESHOLD)
    theirs = torchvision.ops.batched_nms(boxes, scores, groups, IOU_THRESHOLD)
    ours_s = median_seconds(lambda: batched_nms(boxes, scores, groups, IOU_THRESHOLD), repeats)
    theirs_s = median_seconds(
        lambda: torchvision.ops.batched_nms(boxes, scores, groups, IOU_THRESHOLD), repeats
    )
    return {
        "machine": machine_description(threads),
        "ops_info": detrkit.ops_info(),
        "boxes": len(boxes),
        "kept": len(ours),
        "identical": bool(torch.equal(ours, theirs)),
        "torchvision_ms": 1e3 * theirs_s,
        "detrkit_ms": 1e3 * ours_s,
        "speedup": theirs_s / ours_s,
    }


if __name__ == "__main__":
    main(__doc__.splitlines()[0], run, default_repeats=7)
