"""instantiate, locate and target_to_string."""

import datetime
import types

import pytest
import torch
from omegaconf import ListConfig, OmegaConf

from detrkit.config import L, instantiate, locate
from detrkit.config.instantiate import target_to_string


def test_dotted_string_and_class_targets():
    layer = instantiate({"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 3, "bias": False})
    assert isinstance(layer, torch.nn.Linear) and layer.weight.shape == (3, 2) and layer.bias is None
    assert instantiate(L(datetime.timedelta)(hours=2)) == datetime.timedelta(hours=2)


def test_recursion_into_calls_lists_and_tuples():
    cfg = L(types.SimpleNamespace)(
        spans=[L(datetime.timedelta)(days=1), L(datetime.timedelta)(days=2)],
        pair=(L(datetime.timedelta)(seconds=1), 5),
        nested=L(types.SimpleNamespace)(inner=L(datetime.timedelta)(minutes=3)),
    )
    built = instantiate(cfg)
    assert list(built.spans) == [datetime.timedelta(days=1), datetime.timedelta(days=2)]
    assert tuple(built.pair) == (datetime.timedelta(seconds=1), 5)
    assert built.nested.inner == datetime.timedelta(minutes=3)
    assert isinstance(instantiate(ListConfig([L(datetime.timedelta)(days=1)])), ListConfig)
    assert instantiate([L(datetime.timedelta)(days=1)]) == [datetime.timedelta(days=1)]


def test_objects_and_plain_values_pass_through():
    model = torch.nn.Linear(2, 2)
    cfg = L(types.SimpleNamespace)(model=model, n=3, name="x")
    built = instantiate(cfg)
    assert built.model is model and (built.n, built.name) == (3, "x")
    # like detectron2: a mapping without _target_ is returned as is, not built
    plain = OmegaConf.create({"a": 1})
    assert instantiate(plain) is plain


def test_interpolation_is_resolved_before_the_call():
    cfg = OmegaConf.create(
        {"lr": 0.5, "opt": L(types.SimpleNamespace)(lr="${..lr}")}, flags={"allow_objects": True}
    )
    assert instantiate(cfg.opt).lr == 0.5


@pytest.mark.parametrize(
    "target, error, message",
    [
        ("torch.nn.NoSuchLayer", ImportError, "torch.nn.NoSuchLayer"),
        ("no_such_package.Thing", ImportError, "no_such_package"),
        ("math.pi", TypeError, "3.14159"),
    ],
)
def test_bad_target_is_named(target, error, message):
    with pytest.raises(error, match=message):
        instantiate({"_target_": target})


def test_bad_arguments_name_the_target():
    with pytest.raises(TypeError, match="datetime.timedelta.*nonsense"):
        instantiate(L(datetime.timedelta)(nonsense=1))


def test_locate_and_its_inverse():
    assert locate("torch.optim.AdamW") is torch.optim.AdamW
    assert locate("datetime.timedelta") is datetime.timedelta
    assert target_to_string(torch.optim.AdamW) == "torch.optim.AdamW"
    assert target_to_string(torch.nn.modules.linear.Linear) == "torch.nn.Linear"
