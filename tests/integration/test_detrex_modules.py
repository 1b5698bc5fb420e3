"""detrkit's paper modules inside detrex's own DINO and H-Deformable-DETR configs, trained under detrex's
trainer: the config helpers take detrex's configs, the modules take detrex's constructor keywords, and Rank
DETR's high-order matching switches on at its iteration."""

import importlib
import inspect

import pytest
import torch
from detrex_env import (
    DINO_CONFIG,
    H_DETR_CONFIG,
    skip_unless_available,
    tiny_detrex_config,
    train_with_detrex,
)

DETREX_ROOT = skip_unless_available()

from detrex_keywords import DETREX_MODULES

from detrkit.utils.events import current_training_iteration
from detrkit_projects.focus_detr.configs.helpers import to_focus_detr
from detrkit_projects.rank_detr.configs.helpers import high_order_matcher, to_rank_detr, to_rank_dino
from detrkit_projects.rank_detr.modeling import HighOrderMatcher
from detrkit_projects.salience_detr.configs.helpers import to_salience_detr
from detrkit_projects.stage_interactor.configs.helpers import with_csla, with_dca


@pytest.mark.parametrize("name", sorted(DETREX_MODULES))
def test_the_recorded_keywords_are_detrex_s(name):
    module, cls = name.rsplit(".", 1)
    detrex_class = getattr(importlib.import_module(module), cls)
    keywords = [p for p in inspect.signature(detrex_class.__init__).parameters if p != "self"]
    assert keywords == DETREX_MODULES[name][0].split()


class RecordingHighOrderMatcher(HighOrderMatcher):
    """Records ``(iteration, high_order)`` of every matching (one list for the whole test run)."""

    calls: list[tuple[int, bool]] = []

    def forward(self, outputs, targets, *args, **kwargs):
        RecordingHighOrderMatcher.calls.append((current_training_iteration(), self.high_order()))
        return super().forward(outputs, targets, *args, **kwargs)


def salience(model):
    to_salience_detr(model, layer_ratios=(1.0,))


def focus(model):
    to_focus_detr(model, layer_ratios=(1.0,))


def rank_dino(model):
    to_rank_dino(model, matcher_change_iter=2)


def rank_detr(model):
    to_rank_detr(model, matcher_change_iter=2)


def rank_matcher(model):
    """Rank DETR's high-order matcher alone in detrex's DINO (the README's recipe)."""
    model.criterion.matcher = high_order_matcher(model.criterion.matcher, matcher_change_iter=2)


CASES = [
    (DINO_CONFIG, salience, "loss_salience"),
    (DINO_CONFIG, focus, "loss_select"),
    (DINO_CONFIG, rank_dino, "loss_class"),
    (DINO_CONFIG, rank_matcher, "loss_class"),
    (DINO_CONFIG, with_csla, "loss_class"),
    (DINO_CONFIG, with_dca, "loss_class"),
    (H_DETR_CONFIG, rank_detr, "loss_class_one2many"),
    (H_DETR_CONFIG, with_csla, "loss_class_one2many"),
    (H_DETR_CONFIG, with_dca, "loss_class_one2many"),
]


@pytest.mark.parametrize(
    ("config", "helper", "loss"), CASES, ids=[f"{c.split('/')[1]}-{h.__name__}" for c, h, _ in CASES]
)
def test_helper_on_detrex_config_trains_under_detrex(config, helper, loss, tmp_path):
    cfg = tiny_detrex_config(config)
    helper(cfg.model)  # edits the config in place
    is_rank = helper in (rank_dino, rank_detr, rank_matcher)
    if is_rank:
        criterion = cfg.model.criterion
        criterion.matcher._target_ = RecordingHighOrderMatcher
        RecordingHighOrderMatcher.calls.clear()
    torch.manual_seed(0)
    records = train_with_detrex(cfg, tmp_path, max_iter=3)
    losses = [r for r in records if "total_loss" in r]
    assert [r["iteration"] for r in losses] == [0, 1, 2]
    assert all(loss in r and r[loss] == r[loss] for r in losses)  # present and not NaN
    if is_rank:
        switched = {iteration: high for iteration, high in RecordingHighOrderMatcher.calls}
        assert switched == {0: False, 1: False, 2: True}
