"""LazyConfig.load / save / apply_overrides on config trees written into tmp_path."""

import datetime
import logging
import re
import textwrap
import types

import cloudpickle
import pytest
from omegaconf import OmegaConf

from detrkit.config import LazyCall, LazyConfig, instantiate


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def config_tree(tmp_path):
    """configs/base.py <- configs/exp.py (sibling import) <- configs/sub/deep.py (parent, sibling)."""
    write(
        tmp_path / "configs/base.py",
        """
        import datetime
        import types

        from detrkit.config import LazyCall as L

        clock = L(types.SimpleNamespace)(
            hours=3,
            span=L(datetime.timedelta)(hours="${..hours}", minutes=30),
        )
        train = dict(max_iter=100, eval_period="${.max_iter}", tags=["a", "b"])
        _private = dict(x=1)
        plain_number = 7
        """,
    )
    write(
        tmp_path / "configs/exp.py",
        """
        from .base import clock, train

        train.max_iter = 200
        clock.hours = 5
        """,
    )
    write(tmp_path / "configs/sub/local.py", "extra = dict(name='local')\n")
    write(
        tmp_path / "configs/sub/deep.py",
        """
        from ..base import clock
        from ..exp import train
        from .local import extra
        """,
    )
    return tmp_path / "configs"


def test_relative_imports_interpolation_and_filtering(config_tree):
    cfg = LazyConfig.load(str(config_tree / "sub/deep.py"))
    assert set(cfg.keys()) == {"clock", "train", "extra"}
    assert cfg.train.max_iter == 200 and cfg.train.eval_period == 200
    # every import runs its file afresh: exp.py's edit of its own `clock` does not leak into deep.py's
    assert cfg.clock.hours == 3 and cfg.clock.span.hours == 3
    assert cfg.extra.name == "local"
    base = LazyConfig.load(config_tree / "base.py")
    assert set(base.keys()) == {"clock", "train"}  # no private names, modules, classes or plain numbers
    assert LazyConfig.load(config_tree / "base.py", keys="train").max_iter == 100
    clock, train = LazyConfig.load(config_tree / "exp.py", keys=("clock", "train"))
    assert (clock.hours, train.max_iter) == (5, 200)


def test_acceptance_load_override_instantiate_save_reload(config_tree, tmp_path):
    cfg = LazyConfig.load(config_tree / "sub/deep.py")
    LazyConfig.apply_overrides(
        cfg, ["train.max_iter=10", "clock.hours=1", "train.tags=['x', 'y']", "extra.name=changed"]
    )
    assert cfg.train.eval_period == 10
    assert list(cfg.train.tags) == ["x", "y"] and cfg.extra.name == "changed"
    built = instantiate(cfg.clock)
    assert built == types.SimpleNamespace(hours=1, span=datetime.timedelta(hours=1, minutes=30))

    saved = tmp_path / "out/config.yaml"
    saved.parent.mkdir()
    LazyConfig.save(cfg, str(saved))
    assert not (tmp_path / "out/config.yaml.pkl").exists()
    reloaded = LazyConfig.load(saved)
    assert OmegaConf.to_container(reloaded) == {
        "clock": {
            "_target_": "types.SimpleNamespace",
            "hours": 1,
            "span": {"_target_": "datetime.timedelta", "hours": "${..hours}", "minutes": 30},
        },
        "train": {"max_iter": 10, "eval_period": "${.max_iter}", "tags": ["x", "y"]},
        "extra": {"name": "changed"},
    }
    assert reloaded.train.eval_period == 10
    assert instantiate(reloaded.clock) == built


def test_save_falls_back_to_pickle_for_lambdas(tmp_path, caplog):
    cfg = OmegaConf.create(
        {"fn": LazyCall(types.SimpleNamespace)(f=lambda x: x + 1)}, flags={"allow_objects": True}
    )
    with caplog.at_level(logging.WARNING, logger="detrkit.config.lazy"):
        LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    assert "cloudpickle" in caplog.text
    with open(tmp_path / "config.yaml.pkl", "rb") as f:
        restored = cloudpickle.load(f)
    assert instantiate(restored.fn).f(1) == 2


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("a.b=3", "a.b", 3),
        ("a.b=1e-4", "a.b", 1e-4),
        ("a.b=[1, 2]", "a.b", [1, 2]),
        ("a.b=(1, 2)", "a.b", [1, 2]),  # a tuple (omegaconf >= 2.4) or a list (< 2.4, as detectron2 pins)
        ("a.b=None", "a.b", None),
        ("a.b=null", "a.b", None),
        ("a.b=True", "a.b", True),
        ("a.b=false", "a.b", False),
        ("a.b=./output/run 1", "a.b", "./output/run 1"),
        ("a.b='quoted'", "a.b", "quoted"),
        ("a.b=x=y", "a.b", "x=y"),
        ("a.b=${a.c}", "a.b", "from c"),
        ("a.items.1=9", "a.items", [0, 9]),
        ("+a.new.deeper=5", "a.new.deeper", 5),
        ("+brand_new=hi", "brand_new", "hi"),
    ],
)
def test_override_values(override, key, expected):
    cfg = OmegaConf.create({"a": {"b": None, "c": "from c", "items": [0, 1]}})  # None: any type
    LazyConfig.apply_overrides(cfg, [override])
    value = OmegaConf.select(cfg, key)
    value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    assert (list(value) if isinstance(value, tuple) else value) == expected


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "train.max_iter=abc",
            "train.max_iter must be an int, like the value it replaces (90000); got 'abc' (str)",
        ),
        ("train.max_iter=2.5", "train.max_iter must be an int, like the value it replaces (90000); got 2.5"),
        ("train.max_iter=True", "train.max_iter must be an int"),
        ("train.amp=1", "train.amp must be a bool (true/false), like the value it replaces (False); got 1"),
        (
            "optimizer.lr=fast",
            "optimizer.lr must be a number, like the value it replaces (0.0001); got 'fast'",
        ),
        ("train.steps.1=x", "train.steps.1 must be an int, like the value it replaces (20); got 'x'"),
    ],
)
def test_override_of_a_number_or_bool_with_another_type_names_it(override, message):
    cfg = OmegaConf.create(
        {"train": {"max_iter": 90000, "amp": False, "steps": [10, 20]}, "optimizer": {"lr": 1e-4}}
    )
    with pytest.raises(TypeError, match=re.escape(f"Override {override!r}: {message}")):
        LazyConfig.apply_overrides(cfg, [override])
    assert cfg.train.max_iter == 90000 and cfg.train.amp is False and cfg.optimizer.lr == 1e-4


def test_override_types_that_fit():
    cfg = OmegaConf.create(
        {"t": {"max_iter": 90000, "lr": 1e-4, "amp": False, "period": "${.max_iter}", "dir": "./output"}}
    )
    overrides = ["t.max_iter=1e4", "t.lr=1", "t.amp=true", "t.period=7", "t.dir=None", "t.lr=${t.max_iter}"]
    LazyConfig.apply_overrides(cfg, overrides)
    assert OmegaConf.to_container(cfg, resolve=True) == {
        "t": {"max_iter": 10000, "lr": 10000, "amp": True, "period": 7, "dir": None}
    }
    assert type(cfg.t.max_iter) is int  # 1e4 became the int 10000


def test_override_merges_dict_values():
    cfg = OmegaConf.create({"a": {"b": 0, "c": 1}})
    LazyConfig.apply_overrides(cfg, ["a={'c': 2}"])
    assert OmegaConf.to_container(cfg) == {"a": {"b": 0, "c": 2}}


@pytest.mark.parametrize(
    "override, message",
    [
        ("a.typo=1", "'a.typo' is not in the config"),
        ("nope.x=1", "'nope' is not in the config"),
        ("a.items.5=1", "'a.items.5' is not in the config"),
        ("a.b.c=1", "'a.b' is a int, not a config"),
        ("+a.b.c=1", "'a.b' is a int, not a config"),
    ],
)
def test_override_of_unknown_key_names_it(override, message):
    cfg = OmegaConf.create({"a": {"b": 0, "items": [0]}})
    with pytest.raises(KeyError, match=message.replace(".", r"\.")):
        LazyConfig.apply_overrides(cfg, [override])
    assert OmegaConf.to_container(cfg) == {"a": {"b": 0, "items": [0]}}


@pytest.mark.parametrize("override", ["a.b", "=1", "~a.b=1"])
def test_malformed_override(override):
    with pytest.raises(ValueError, match=override.replace(".", r"\.")):
        LazyConfig.apply_overrides(OmegaConf.create({"a": {"b": 0}}), [override])


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.py"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        LazyConfig.load(missing)
    with pytest.raises(ValueError, match="config.json"):
        LazyConfig.load(tmp_path / "config.json")

    broken = write(tmp_path / "broken.py", "x = dict(\n")
    with pytest.raises(SyntaxError, match=f"{broken}.*line 1"):
        LazyConfig.load(broken)

    importer = write(tmp_path / "importer.py", "from .nowhere import x\n")
    with pytest.raises(ImportError, match=f"{importer}.*{tmp_path / 'nowhere.py'} does not exist"):
        LazyConfig.load(importer)

    folder_import = write(tmp_path / "folder_import.py", "from . import importer\n")
    with pytest.raises(ImportError, match="imports a folder"):
        LazyConfig.load(folder_import)

    with pytest.raises(KeyError, match="no top-level 'absent'"):
        LazyConfig.load(write(tmp_path / "ok.py", "a = dict(x=1)\n"), keys="absent")


def test_yaml_config_loads_whole_content(tmp_path):
    path = write(tmp_path / "c.yaml", "train:\n  max_iter: 5\n  half: ${.max_iter}\nnumber: 3\n")
    cfg = LazyConfig.load(path)
    assert (cfg.train.half, cfg.number) == (5, 3)
