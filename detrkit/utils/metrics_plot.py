"""A training run's ``metrics.json`` drawn as one PNG (matplotlib, Agg backend): the total loss, the losses
summed per kind, the learning rate and, when the run was evaluated, AP against the iteration.

``metrics.json`` has one JSON object per line: training lines hold ``iteration``, ``total_loss``, each
weighted loss ``loss_*`` and ``lr``; evaluation lines hold ``iteration`` and ``<task>/<metric>`` (e.g.
``bbox/AP``, ``bbox/AP50``).
"""

import json
import math
import os
from collections import defaultdict

__all__ = ["eval_keys", "loss_kind", "metrics_figure", "plot_metrics", "read_metrics", "write_metrics_plot"]

AP_METRICS = ("AP", "AP50", "AP75")
MAX_OTHER_EVAL_KEYS = 6


def read_metrics(json_file: str) -> list[dict]:
    """The objects of a ``metrics.json`` file, one per line (blank lines skipped).

    Raises:
        ValueError: naming the file and line of a line that is not a JSON object with an ``iteration``.
    """
    records = []
    with open(json_file, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{json_file}, line {number}: not JSON ({e.msg})") from e
            if not isinstance(record, dict) or "iteration" not in record:
                raise ValueError(f"{json_file}, line {number}: expected a JSON object with an 'iteration'")
            records.append(record)
    return records


def loss_kind(name: str) -> str:
    """The kind of a loss key: the word after ``loss_`` (``loss_class_dn_2`` -> ``class``, ``loss_giou``
    -> ``giou``)."""
    return name[len("loss_") :].split("_")[0]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Iterations and finite values of ``key`` over the records that have it."""
    points = [
        (r["iteration"], float(r[key]))
        for r in records
        if isinstance(r.get(key), int | float) and math.isfinite(r[key])
    ]
    return [p[0] for p in points], [p[1] for p in points]


def _grouped_losses(records: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """Per loss kind, the iterations and the sum of its ``loss_*`` values on each training line."""
    sums: dict[str, dict[int, float]] = defaultdict(dict)
    for record in records:
        for key, value in record.items():
            if key.startswith("loss_") and isinstance(value, int | float) and math.isfinite(value):
                kind = sums[loss_kind(key)]
                kind[record["iteration"]] = kind.get(record["iteration"], 0.0) + float(value)
    return {kind: (list(values), list(values.values())) for kind, values in sorted(sums.items())}


def eval_keys(records: list[dict]) -> list[str]:
    """The evaluation metrics to draw: the ``<task>/AP``, ``/AP50``, ``/AP75`` keys present, in task then
    metric order; for an evaluator without AP, its first ``<task>/<metric>`` keys (at most 6, sorted)."""
    keys = {key for r in records for key in r if "/" in key}
    ap_keys = [k for k in keys if k.split("/", 1)[1] in AP_METRICS]
    if ap_keys:
        return sorted(ap_keys, key=lambda k: (k.split("/", 1)[0], AP_METRICS.index(k.split("/", 1)[1])))
    return sorted(keys)[:MAX_OTHER_EVAL_KEYS]


def metrics_figure(records: list[dict], title: str = ""):
    """A matplotlib Figure of ``records`` (from :func:`read_metrics`) with four panels: total loss, losses
    per kind, learning rate, and the evaluation metrics of :func:`eval_keys` (or "not evaluated").

    Raises:
        ValueError: if no record has a ``total_loss`` (nothing was trained).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without changing pyplot's backend
    from matplotlib.figure import Figure

    iterations, total = _series(records, "total_loss")
    if not iterations:
        raise ValueError("no training line (with 'total_loss') in the metrics: nothing to plot")
    figure = Figure(figsize=(11, 7.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    (ax_total, ax_groups), (ax_lr, ax_ap) = axes
    ax_total.plot(iterations, total, color="black")
    ax_total.set_title("total loss (weighted sum)")
    for kind, (its, values) in _grouped_losses(records).items():
        ax_groups.plot(its, values, label=kind)
    ax_groups.set_title("losses per kind (summed over layers, weighted)")
    if ax_groups.lines:
        ax_groups.legend(fontsize=8)
    lr_its, lr = _series(records, "lr")
    ax_lr.plot(lr_its, lr, color="tab:purple")
    ax_lr.set_title("learning rate")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for key in eval_keys(records):
        its, values = _series(records, key)
        ax_ap.plot(its, values, marker="o", label=key)
    ax_ap.set_title("evaluation on the test set")
    if ax_ap.lines:
        ax_ap.legend(fontsize=8)
    else:
        ax_ap.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax_ap.transAxes)
    for ax in axes.flat:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_metrics(records: list[dict], out_png: str, title: str = "") -> None:
    """Writes :func:`metrics_figure` of ``records`` to ``out_png`` (1100 x 750 pixels)."""
    figure = metrics_figure(records, title)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    figure.savefig(out_png, dpi=100)


def write_metrics_plot(output_dir: str) -> str:
    """Draws ``output_dir/metrics.json`` into ``output_dir/metrics.png``; returns the PNG's path.

    Raises:
        FileNotFoundError: naming the missing ``metrics.json``.
    """
    json_file = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"{json_file} does not exist: is {output_dir} a training output folder?")
    out_png = os.path.join(output_dir, "metrics.png")
    plot_metrics(read_metrics(json_file), out_png, title=os.path.abspath(output_dir))
    return out_png
