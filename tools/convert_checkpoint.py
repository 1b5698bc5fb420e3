#!/usr/bin/env python
"""Converts checkpoints between an official implementation's parameter names and detrkit's, either way.

    python tools/convert_checkpoint.py --from detrex-dino --input official.pth --output detrkit_model.pth
    python tools/convert_checkpoint.py --to detrex-dino --input output/model_final.pth --output official.pth

The input holds a state dict, or a checkpoint with one under "model". ``--from`` writes a detrkit checkpoint
(``{"model": state_dict}``) that ``train.init_checkpoint`` / ``DetectionCheckpointer`` loads; ``--to`` writes
``{"model": state_dict}`` with the official names, which the official model loads with ``strict=True``.
Formats whose official model keeps constants as buffers that detrkit keeps in its config (salience-detr)
need ``--config-file``, the detrkit config the weights belong to, to rebuild them; with ``--from``, the
config is optional and the checkpoint's constants must equal the config's.

The input is read without running code from it (tensors, numpy arrays and plain containers only);
``--trust-pickle`` unpickles anything else, for files from a source you trust.

Formats: detrkit's own converters plus every project's ``projects/<name>/modeling/checkpoint_conversion.py``,
which registers its official format on import.
"""

import argparse
import importlib
import importlib.util
import pickle
import pkgutil

import torch

import detrkit_projects
from detrkit.checkpoint.safe_load import load_checkpoint_file
from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.checkpoint_conversion import CONVERTERS


def register_project_converters() -> None:
    """Imports ``detrkit_projects.<name>.modeling.checkpoint_conversion`` of every project that has one."""
    for project in pkgutil.iter_modules(detrkit_projects.__path__):
        module = f"detrkit_projects.{project.name}.modeling.checkpoint_conversion"
        if (
            project.ispkg
            and importlib.util.find_spec(f"detrkit_projects.{project.name}.modeling") is not None
        ):
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)


def build_model(config_file: str) -> torch.nn.Module:
    """The config's model on the CPU: what a converter reads the constants of its config from."""
    cfg = LazyConfig.load(config_file)
    if "device" in cfg.model:
        cfg.model.device = "cpu"
    return instantiate(cfg.model)


def main() -> None:
    register_project_converters()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="source", choices=sorted(CONVERTERS), help="official -> detrkit")
    direction.add_argument("--to", dest="target", choices=sorted(CONVERTERS), help="detrkit -> official")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--config-file",
        help="the detrkit config of the model: needed --to salience-detr; --from, checks its constants",
    )
    parser.add_argument(
        "--trust-pickle", action="store_true", help="unpickle objects beyond tensors and containers"
    )
    args = parser.parse_args()
    try:
        checkpoint = load_checkpoint_file(args.input, trust_pickle=args.trust_pickle or None)
        state_dict = (
            checkpoint["model"] if isinstance(checkpoint, dict) and "model" in checkpoint else checkpoint
        )
        model = build_model(args.config_file) if args.config_file else None
        if args.source:
            converted = CONVERTERS[args.source].to_detrkit(state_dict, model)
        else:
            converted = CONVERTERS[args.target].to_official(state_dict, model)
    except (
        ValueError,
        OSError,
        pickle.UnpicklingError,
    ) as e:  # the loader's and converters' name the problem
        parser.exit(1, f"error: {e}\n")
    torch.save({"model": converted}, args.output)
    layout = f"from {args.source} to detrkit" if args.source else f"from detrkit to {args.target}"
    print(f"wrote {args.output}: {len(converted)} tensors converted {layout}")


if __name__ == "__main__":
    main()
