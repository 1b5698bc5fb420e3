"""A synthetic detection dataset of coloured shapes, in COCO format, that needs no download.

:func:`generate_shapes_dataset` draws ``num_images`` PNG images of circles, squares and triangles (solid
colours, random rotation, sizes from ``min_size`` px to half the image, ``0..max_objects`` per image, never
overlapping) on textured backgrounds, and writes ``annotations.json`` with tight boxes (the extent of the
drawn pixels), polygon segmentations and areas; the shapes are drawn by pycocotools' rasterisation of the
polygons, so the segmentation, area and box agree exactly with the pixels. Image ``i`` depends only on
``(seed, i)``.

:func:`register_shapes_datasets` (called by ``import detrkit.data``) registers ``shapes_train`` and
``shapes_val``; each is generated on first load into ``<datasets root>/shapes`` when ``$DETRKIT_DATASETS`` or
``$DETECTRON2_DATASETS`` is set (:func:`detrkit.data.datasets.builtin.datasets_root`), else into the cache
folder ``~/.cache/detrkit/shapes``, atomically: into a temporary folder that is then renamed.
"""

import colorsys
import json
import logging
import os
import shutil
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from detrkit.data.catalog import DatasetCatalog, MetadataCatalog
from detrkit.data.datasets.builtin import DATASETS_ENV_VARS, datasets_root
from detrkit.data.datasets.coco import load_coco_json

__all__ = [
    "SHAPE_CLASSES",
    "SHAPES_SPLITS",
    "generate_shapes_dataset",
    "register_shapes_datasets",
    "render_shapes_image",
    "shapes_cache_root",
]

logger = logging.getLogger(__name__)

SHAPE_CLASSES = ("circle", "square", "triangle")
SHAPES_SPLITS = {"shapes_train": (1, 3000), "shapes_val": (2, 300)}  # name -> (seed, number of images)
_GENERATOR_VERSION = 1  # part of the cache folder name: bump when the drawing changes
_PLACEMENT_TRIES = 20
_PARALLEL_MIN_IMAGES = 256


def shapes_cache_root() -> str:
    """``<datasets root>/shapes`` when one of :data:`DATASETS_ENV_VARS` is set, else
    ``~/.cache/detrkit/shapes``."""
    if any(os.environ.get(variable) for variable in DATASETS_ENV_VARS):
        return os.path.join(datasets_root(), "shapes")
    return os.path.join(os.path.expanduser("~"), ".cache", "detrkit", "shapes")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8: a muted colour with smooth blotches and stripes, quantised."""
    base = rng.uniform(60, 180, 3)
    coarse = np.clip(rng.normal(128, 30, (5, 5, 3)), 0, 255).astype(np.uint8)
    blotches = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR), np.float32) - 128
    angle, frequency, amplitude = rng.uniform(0, np.pi), rng.uniform(0.05, 0.5), rng.uniform(0, 20)
    coords = np.arange(size, dtype=np.float32)
    phase = coords[None, :] * np.cos(angle) + coords[:, None] * np.sin(angle)
    stripes = amplitude * np.sin(frequency * phase)
    image = np.clip(base + blotches + stripes[..., None], 0, 255)
    return ((image // 8) * 8).astype(np.uint8)


def _polygon(shape: int, center: np.ndarray, diameter: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape inscribed in a circle of ``diameter`` around ``center``."""
    num_vertices = {0: max(12, int(diameter * 1.5)), 1: 4, 2: 3}[shape]
    angles = angle + 2 * np.pi * np.arange(num_vertices) / num_vertices
    points = center + diameter / 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return [(float(x), float(y)) for x, y in points]


def _overlaps(box: np.ndarray, boxes: list[np.ndarray], gap: float = 2.0) -> bool:
    return any(
        box[0] < b[2] + gap and b[0] < box[2] + gap and box[1] < b[3] + gap and b[1] < box[3] + gap
        for b in boxes
    )


def _rasterize(polygon: list[float], image_size: int) -> np.ndarray:
    """``(image_size, image_size)`` bool mask of a flat ``[x0, y0, x1, y1, ...]`` polygon, by pycocotools."""
    rle = mask_utils.frPyObjects([polygon], image_size, image_size)
    with warnings.catch_warnings():  # pycocotools' Cython decode under numpy 2 warns about __array__(copy=)
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        return mask_utils.decode(rle)[:, :, 0].astype(bool)


def render_shapes_image(
    seed: int, index: int, image_size: int = 256, max_objects: int = 8, min_size: int = 8
) -> tuple[np.ndarray, list[dict]]:
    """Draws image ``index`` of the dataset of ``seed``.

    Returns:
        The ``(image_size, image_size, 3)`` uint8 RGB image and one dict per object: ``{"category": index
        into SHAPE_CLASSES, "bbox": [x, y, w, h] (tight around the drawn pixels), "area": number of drawn
        pixels, "polygon": [x0, y0, x1, y1, ...]}``.
    """
    rng = np.random.default_rng([seed, index])
    image = _background(rng, image_size)
    max_diameter = image_size / 2
    placed: list[np.ndarray] = []
    objects = []
    for _ in range(rng.integers(0, max_objects + 1)):
        shape = int(rng.integers(len(SHAPE_CLASSES)))
        diameter = float(np.exp(rng.uniform(np.log(min_size), np.log(max_diameter))))
        angle = float(rng.uniform(0, 2 * np.pi))
        hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.6, 1), rng.uniform(0.6, 1)
        color = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, saturation, value))
        for _ in range(_PLACEMENT_TRIES):
            center = rng.uniform(diameter / 2 + 1, image_size - diameter / 2 - 1, 2)
            polygon = _polygon(shape, center, diameter, angle)
            extent = np.array([*np.min(polygon, axis=0), *np.max(polygon, axis=0)])
            if not _overlaps(extent, placed):
                break
        else:
            continue
        flat = [round(v, 2) for point in polygon for v in point]
        mask = _rasterize(flat, image_size)
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        image[mask] = color
        placed.append(extent)
        x0, y0 = int(xs.min()), int(ys.min())
        objects.append(
            {
                "category": shape,
                "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],
                "area": len(xs),
                "polygon": flat,
            }
        )
    return image, objects


def _write_image(args: tuple) -> tuple[int, list[dict]]:
    """Renders and saves one image; returns its index and objects."""
    seed, index, image_size, max_objects, min_size, path = args
    image, objects = render_shapes_image(seed, index, image_size, max_objects, min_size)
    Image.fromarray(image).save(path, format="PNG", compress_level=3)
    return index, objects


def generate_shapes_dataset(
    root: str,
    num_images: int,
    seed: int,
    image_size: int = 256,
    max_objects: int = 8,
    min_size: int = 8,
    num_workers: int | None = None,
) -> str:
    """Writes ``root/images/NNNNNN.png`` and ``root/annotations.json`` (COCO instances format, category
    ids 1..3 in :data:`SHAPE_CLASSES` order) and returns the json path. The output depends only on the
    arguments (not on ``num_workers``: processes that render images in parallel; default: up to 8 when
    there are at least 256 images)."""
    if num_images <= 0 or image_size < 2 * min_size or min_size < 1:
        raise ValueError(
            f"generate_shapes_dataset: need num_images > 0 and 1 <= min_size <= image_size / 2, got "
            f"num_images={num_images}, image_size={image_size}, min_size={min_size}"
        )
    image_dir = os.path.join(root, "images")
    os.makedirs(image_dir, exist_ok=True)
    jobs = [
        (seed, i, image_size, max_objects, min_size, os.path.join(image_dir, f"{i:06d}.png"))
        for i in range(num_images)
    ]
    if num_workers is None:
        num_workers = min(8, os.cpu_count() or 1) if num_images >= _PARALLEL_MIN_IMAGES else 0
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers) as pool:
            results = list(pool.map(_write_image, jobs, chunksize=32))
    else:
        results = [_write_image(job) for job in jobs]

    images, annotations = [], []
    for index, objects in results:
        images.append(
            {"id": index + 1, "file_name": f"{index:06d}.png", "height": image_size, "width": image_size}
        )
        for obj in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": obj["category"] + 1,
                    "bbox": obj["bbox"],
                    "area": obj["area"],
                    "segmentation": [obj["polygon"]],
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPE_CLASSES)
    ]
    json_file = os.path.join(root, "annotations.json")
    with open(json_file, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return json_file


def _ensure_generated(folder: str, num_images: int, seed: int, image_size: int) -> None:
    """Generates the dataset into ``folder`` unless it exists; a partial generation never appears there."""
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    logger.info(f"Generating the shapes dataset ({num_images} images, seed {seed}) into {folder}")
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        generate_shapes_dataset(staging, num_images, seed, image_size)
        os.rename(staging, folder)
    except OSError:
        if not os.path.isdir(folder):  # a real failure, not another process having finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def register_shapes_datasets(
    root: str | None = None, splits: dict[str, tuple[int, int]] | None = None, image_size: int = 256
) -> None:
    """Registers each split ``name -> (seed, num_images)`` (default :data:`SHAPES_SPLITS`) as a COCO
    dataset in ``root`` (default :func:`shapes_cache_root`), generated when first loaded."""
    root = shapes_cache_root() if root is None else root
    for name, (seed, num_images) in (SHAPES_SPLITS if splits is None else splits).items():
        folder = os.path.join(root, f"{name}-n{num_images}-s{image_size}-seed{seed}-v{_GENERATOR_VERSION}")
        json_file, image_root = os.path.join(folder, "annotations.json"), os.path.join(folder, "images")

        def load(
            name=name,
            folder=folder,
            seed=seed,
            num_images=num_images,
            json_file=json_file,
            image_root=image_root,
        ):
            _ensure_generated(folder, num_images, seed, image_size)
            return load_coco_json(json_file, image_root, name)

        DatasetCatalog.register(name, load)
        MetadataCatalog.get(name).set(
            thing_classes=list(SHAPE_CLASSES),
            thing_dataset_id_to_contiguous_id={i + 1: i for i in range(len(SHAPE_CLASSES))},
            json_file=json_file,
            image_root=image_root,
            evaluator_type="coco",
        )
