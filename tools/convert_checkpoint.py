#!/usr/bin/env python
"""Converts an official implementation's checkpoint to detrkit's parameter names.

    python tools/convert_checkpoint.py --from detrex-dino --input model.pth --output detrkit_model.pth

The input holds a state dict, or a checkpoint with one under "model"; the output is a detrkit checkpoint
(``{"model": state_dict}``) that ``train.init_checkpoint`` / ``DetectionCheckpointer`` loads.

Sources: detrkit's own converters plus every project's ``projects/<name>/modeling/checkpoint_conversion.py``,
which registers its official format on import.
"""

import argparse
import importlib
import importlib.util
import pkgutil

import torch

import detrkit_projects
from detrkit.modeling.checkpoint_conversion import CONVERTERS, convert_state_dict


def register_project_converters() -> None:
    """Imports ``projects.<name>.modeling.checkpoint_conversion`` of every project that has one."""
    for project in pkgutil.iter_modules(detrkit_projects.__path__):
        module = f"detrkit_projects.{project.name}.modeling.checkpoint_conversion"
        if (
            project.ispkg
            and importlib.util.find_spec(f"detrkit_projects.{project.name}.modeling") is not None
        ):
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)


def main() -> None:
    register_project_converters()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, choices=sorted(CONVERTERS))
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    checkpoint = torch.load(args.input, map_location="cpu", weights_only=False)
    state_dict = checkpoint["model"] if isinstance(checkpoint, dict) and "model" in checkpoint else checkpoint
    converted = convert_state_dict(state_dict, args.source)
    torch.save({"model": converted}, args.output)
    print(f"wrote {args.output}: {len(converted)} tensors converted from {args.source}")


if __name__ == "__main__":
    main()
