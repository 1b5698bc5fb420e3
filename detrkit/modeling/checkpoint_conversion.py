"""Converting state dicts between official implementations' parameter names and detrkit's, both ways.

Each official format is a :class:`Converter`: an ordered list of :class:`Rename` rules, each declared once
and read in both directions (official -> detrkit for checkpoints loaded here, detrkit -> official for models
trained here and served by the official code). A rule pairs key prefixes with integer fields, e.g.
``Rename("backbone.res{stage+1}.{block}.conv{i}.", "backbone.layer{stage}.{block}.conv{i}.")``; the first
rule whose prefix (on the side being converted from) matches a key renames it, the rest of the key is kept,
and a key no rule matches keeps its name. A side may list several prefixes: the names under which one module
is shared (each is written; on the way in, all of them must hold the same tensor). Official buffers that
detrkit computes instead of storing are :attr:`Converter.derived`: dropped on the way in, rebuilt from the
detrkit model on the way out. Every conversion is checked by converting the result back: it must give every
input tensor under its input name, so the two directions cannot drift apart.

detrex's DINO and H-Deformable-DETR differ from detrkit's only in two places: the backbone uses detectron2's
ResNet names (``backbone.res2.0.conv1.norm.weight``; detrkit's ResNet keeps torchvision's,
``backbone.layer1.0.bn1.weight``), and the two-stage heads live in the transformer's query selector
(``transformer.enc_output.*`` -> ``transformer.query_selector.enc_output.*``).
"""

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from detrkit.modeling.transformer import DINOTransformer, HDeformableDetrTransformer

__all__ = [
    "CONVERTERS",
    "DETECTRON2_RESNET_RULES",
    "REVERSED",
    "Converter",
    "Rename",
    "StateDict",
    "convert_state_dict",
    "convert_to_official",
    "detrex_transformer_rules",
    "register_converter",
]

StateDict = dict[str, torch.Tensor]
#: field name -> the values it takes where a rule's other side does not bind it (e.g. one per encoder layer)
Context = Mapping[str, Sequence[int]]

_FIELD = re.compile(r"\{(\w+)(?:\+(\d+))?\}")
_SIDES = ("official", "detrkit")


class _Prefix:
    """A key prefix with non-negative integer fields: ``res{stage+1}.{block}.`` matches ``res2.0.`` with
    ``stage=1, block=0``."""

    def __init__(self, text: str):
        self.text = text
        self.fields = [(m[1], int(m[2] or 0)) for m in _FIELD.finditer(text)]
        pieces = _FIELD.split(text)[::3]  # the literal text between the fields
        self.pattern = re.compile(r"(\d+)".join(re.escape(piece) for piece in pieces))

    def match(self, key: str, context: Context) -> tuple[dict[str, int], str] | None:
        """The field values and the rest of ``key``, or None (a field listed in ``context`` must take one
        of its values there)."""
        m = self.pattern.match(key)
        if m is None:
            return None
        values: dict[str, int] = {}
        for (name, offset), digits in zip(self.fields, m.groups(), strict=True):
            value = int(digits) - offset
            if value < 0 or (name in context and value not in context[name]):
                return None
            if values.setdefault(name, value) != value:
                return None
        return values, key[m.end() :]

    def expand(self, values: Mapping[str, int], context: Context) -> list[str]:
        """The prefix with ``values`` filled in, once per combination of the context fields it leaves."""
        free = sorted({name for name, _ in self.fields if name not in values})
        missing = [name for name in free if name not in context]
        if missing:
            raise KeyError(f"{self.text!r}: no value for field(s) {missing}")
        names = []
        for combination in itertools.product(*(context[name] for name in free)):
            filled = {**values, **dict(zip(free, combination, strict=True))}
            names.append(_FIELD.sub(lambda m, filled=filled: str(filled[m[1]] + int(m[2] or 0)), self.text))
        return names


def _as_tuple(prefixes: str | Sequence[str]) -> tuple[str, ...]:
    return (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)


@dataclass(frozen=True)
class Rename:
    """Official key prefix(es) <-> detrkit key prefix(es), read in both directions.

    Args:
        official, detrkit: a prefix, or the prefixes under which one module is shared on that side (all are
            written). Integer fields ``{name}`` / ``{name+offset}`` are matched on one side and filled in on
            the other; a field only one side has takes every value its :class:`Converter`'s context lists.
        transform: ``(official -> detrkit, detrkit -> official)`` value functions, inverse to each other
            (e.g. a reversed order); None keeps the tensor.
    """

    official: str | tuple[str, ...]
    detrkit: str | tuple[str, ...]
    transform: (
        tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]] | None
    ) = None

    def prefixes(self, side: str) -> list[_Prefix]:
        return [_Prefix(text) for text in _as_tuple(getattr(self, side))]


def _reverse(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flip(0)


#: ``transform`` of a 1-D tensor stored in the opposite order on the two sides (its own inverse)
REVERSED = (_reverse, _reverse)

#: detectron2's ResNet names (detrex's backbone) <-> torchvision's (detrkit's ResNet), under ``backbone.``;
#: the same scheme as :func:`detrkit.modeling.backbone.detectron2_resnet_name_to_torchvision`
DETECTRON2_RESNET_RULES = (
    Rename("backbone.stem.conv1.norm.", "backbone.bn1."),
    Rename("backbone.stem.conv1.", "backbone.conv1."),
    Rename("backbone.res{stage+1}.{block}.shortcut.norm.", "backbone.layer{stage}.{block}.downsample.1."),
    Rename("backbone.res{stage+1}.{block}.shortcut.", "backbone.layer{stage}.{block}.downsample.0."),
    Rename("backbone.res{stage+1}.{block}.conv{i}.norm.", "backbone.layer{stage}.{block}.bn{i}."),
    Rename("backbone.res{stage+1}.{block}.conv{i}.", "backbone.layer{stage}.{block}.conv{i}."),
)


def detrex_transformer_rules(renames: Mapping[str, str]) -> tuple[Rename, ...]:
    """Rules of a transformer's ``detrex_key_renames`` (prefixes relative to ``transformer.``)."""
    return tuple(Rename(f"transformer.{old}", f"transformer.{new}") for old, new in renames.items())


def _no_context(state_dict: StateDict) -> dict[str, Sequence[int]]:
    return {}


@dataclass(frozen=True)
class Converter:
    """One official checkpoint format.

    Args:
        name: the source name (``tools/convert_checkpoint.py --from/--to``).
        rules: :class:`Rename` rules, first match wins (in both directions).
        closed_prefixes: keys under these prefixes (on either side) must match a rule; anything else there
            is a ValueError naming the key, not a silently kept name.
        derived: official keys with no detrkit counterpart -> how to rebuild the tensor from the detrkit
            model (the official model keeps a constant as a buffer; detrkit keeps it in its config).
        context: the values of the fields that only one side of a rule has, from a state dict (either side).
    """

    name: str
    rules: tuple[Rename, ...]
    closed_prefixes: tuple[str, ...] = ()
    derived: Mapping[str, Callable[[nn.Module], torch.Tensor]] = field(default_factory=dict)
    context: Callable[[StateDict], Context] = _no_context

    def __post_init__(self):
        object.__setattr__(
            self, "_prefixes", {side: [rule.prefixes(side) for rule in self.rules] for side in _SIDES}
        )

    def extend(self, name: str, rules: Sequence[Rename]) -> "Converter":
        """This converter under another name with ``rules`` tried first."""
        return replace(self, name=name, rules=tuple(rules) + self.rules)

    def to_detrkit(self, state_dict: StateDict, model: nn.Module | None = None) -> StateDict:
        """An official state dict with detrkit's names (the :attr:`derived` buffers dropped; given the detrkit
        ``model``, a ValueError names those that differ from what its config gives)."""
        if model is not None:
            expected = {
                key: build(model).detach().cpu() for key, build in self.derived.items() if key in state_dict
            }
            differ = [
                f"{key} = {state_dict[key].tolist()} (the detrkit model's config gives {value.tolist()})"
                for key, value in expected.items()
                if not torch.equal(state_dict[key].cpu().to(value.dtype), value)
            ]
            if differ:
                raise ValueError(
                    f"{self.name}: the checkpoint's {'; '.join(differ)}: set the config to match"
                )
        kept = {key: value for key, value in state_dict.items() if key not in self.derived}
        converted = self._rename(kept, "official", "detrkit")
        self._check_inverse(kept, converted, "detrkit", "official")
        return converted

    def to_official(self, state_dict: StateDict, model: nn.Module | None = None) -> StateDict:
        """A detrkit state dict with the official names, plus the :attr:`derived` buffers, which need the
        detrkit ``model`` the weights belong to (ValueError naming them without it)."""
        if self.derived and model is None:
            raise ValueError(
                f"{self.name}: the official model also expects {sorted(self.derived)}, which a detrkit state "
                "dict does not hold (detrkit keeps these constants in its config); give the detrkit model "
                "(tools/convert_checkpoint.py --config-file) to rebuild them"
            )
        converted = self._rename(state_dict, "detrkit", "official")
        self._check_inverse(state_dict, converted, "official", "detrkit")
        converted.update({key: build(model).detach().cpu() for key, build in self.derived.items()})
        return converted

    def _rename(self, state_dict: StateDict, source: str, target: str) -> StateDict:
        context = self.context(state_dict)
        origins: dict[str, str] = {}
        converted: StateDict = {}
        for key, value in state_dict.items():
            names, value = self._names(key, value, source, target, context)
            for name in names:
                if name in converted and not _same(converted[name], value):
                    raise ValueError(
                        f"{self.name}: {origins[name]!r} and {key!r} both become {name!r} (one shared module "
                        "on the other side) but hold different tensors"
                    )
                origins.setdefault(name, key)
                converted[name] = value
        return converted

    def _names(
        self, key: str, value: torch.Tensor, source: str, target: str, context: Context
    ) -> tuple[list[str], torch.Tensor]:
        for rule, sources, targets in zip(
            self.rules, self._prefixes[source], self._prefixes[target], strict=True
        ):
            for prefix in sources:
                hit = prefix.match(key, context)
                if hit is None:
                    continue
                values, rest = hit
                if rule.transform is not None:
                    value = rule.transform[_SIDES.index(source)](value)
                return [name + rest for p in targets for name in p.expand(values, context)], value
        if key.startswith(self.closed_prefixes):
            raise ValueError(f"{self.name}: {source} key {key!r} matches none of the renaming rules")
        return [key], value

    def _check_inverse(self, original: StateDict, converted: StateDict, source: str, target: str) -> None:
        """Converting ``converted`` back must give every ``original`` tensor under its name."""
        back = self._rename(converted, source, target)
        lost = [key for key in original if key not in back or not _same(back[key], original[key])]
        if lost:
            raise ValueError(
                f"{self.name}: converting to {source} names and back does not give {lost[:5]} again "
                f"({len(lost)} keys): the renaming rules are not reversible for these keys"
            )


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal tensors (views of the same memory, as a shared module's entries are, without comparing)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    same_view = a.device == b.device and a.data_ptr() == b.data_ptr() != 0 and a.stride() == b.stride()
    return same_view or torch.equal(a, b)


_DETREX_DINO = Converter(
    "detrex-dino",
    DETECTRON2_RESNET_RULES + detrex_transformer_rules(DINOTransformer.detrex_key_renames),
    closed_prefixes=("backbone.",),
)

CONVERTERS: dict[str, Converter] = {
    "detrex-dino": _DETREX_DINO,
    "detrex-h-deformable-detr": Converter(
        "detrex-h-deformable-detr",
        DETECTRON2_RESNET_RULES + detrex_transformer_rules(HDeformableDetrTransformer.detrex_key_renames),
        closed_prefixes=("backbone.",),
    ),
}


def register_converter(converter: Converter) -> None:
    """Adds a source (a project's official checkpoint format) to :data:`CONVERTERS` under its name."""
    if converter.name in CONVERTERS:
        raise ValueError(f"a converter for {converter.name!r} is already registered")
    CONVERTERS[converter.name] = converter


def _converter(source: str) -> Converter:
    if source not in CONVERTERS:
        raise ValueError(f"unknown checkpoint source {source!r}; known: {sorted(CONVERTERS)}")
    return CONVERTERS[source]


def convert_state_dict(state_dict: StateDict, source: str, model: nn.Module | None = None) -> StateDict:
    """``state_dict`` of an official ``source`` model with detrkit's names (same tensors; ``model``: the
    detrkit model, to check the official constants it keeps in its config)."""
    return _converter(source).to_detrkit(state_dict, model)


def convert_to_official(state_dict: StateDict, target: str, model: nn.Module | None = None) -> StateDict:
    """A detrkit ``state_dict`` with the names of the official ``target`` model, which loads it with
    ``strict=True`` (``model``: the detrkit model, for targets with :attr:`Converter.derived` buffers)."""
    return _converter(target).to_official(state_dict, model)
