"""Out-of-fold diagnostics by task, and the test predictions beside the out-of-fold ones.

Classification: a confusion matrix, ROC and precision-recall curves and a calibration curve
(scikit-learn's `metrics` and `calibration` compute them), and the surest mistakes. Regression:
predicted against actual, residuals and the largest errors, on the log1p scale where the metric
scores that (rmsle). Both: the distribution of test predictions against the out-of-fold ones,
with the Kolmogorov-Smirnov distance between them, where a train/test shift shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import polars as pl

from kit.reporting import charts
from kit.reporting.folder import Folder
from kit.reporting.layout import missing, number, sample, table, thin

# points per drawn series: enough for the eye, small enough for the file
MAX_LINE_POINTS = 300
MAX_SCATTER_POINTS = 1500
MAX_CURVES = 10  # one-against-the-rest curves of a multiclass task
MAX_MATRIX = 20  # classes in a confusion matrix
WORST_ROWS = 10
CALIBRATION_BINS = 10
MIN_BIN_ROWS = 10  # a calibration bin with fewer rows is noise, not a reading


@dataclass
class Predictions:
    """The validated out-of-fold rows and the test predictions, in the report's terms.

    y is the class index or the value; oof and test are (n, k) probabilities or (n,) values.
    """

    task: str
    y: np.ndarray
    oof: np.ndarray
    test: np.ndarray | None
    classes: list[str]
    ids: np.ndarray | None
    folds: np.ndarray
    target: str
    log_scale: bool = False  # rmsle: errors are read on log1p(target)
    threshold: float | None = None  # a binary run's cut on P(class 1) for its labels (metrics.json)

    def labels(self, proba: np.ndarray) -> np.ndarray:
        """The classes the run predicts: the most probable, or class 1 above the run's cut."""
        from kit.metrics import at_threshold

        return at_threshold(proba, self.threshold).argmax(axis=1)

    def scale(self, v: np.ndarray) -> np.ndarray:
        return np.log1p(np.clip(v, 0, None)) if self.log_scale else v

    @property
    def unit(self) -> str:
        return f"log1p({self.target})" if self.log_scale else self.target

    def row(self, i: int) -> str:
        return html.escape(str(self.ids[i])) if self.ids is not None else f"row {i}"


def predictions(f: Folder) -> Predictions | str:
    """The out-of-fold predictions of a folder, or why there are none (made once a folder: the
    OOF and drift sections share them)."""
    if "predictions" not in f.derived:
        f.derived["predictions"] = _predictions(f)
    return f.derived["predictions"]


def _predictions(f: Folder) -> Predictions | str:
    scored = f.oof  # the validated rows (a time split never validates its first rows)
    if scored is None:
        return "oof.parquet is absent or has no fold column."
    comp = f.competition or {}
    columns = list(scored.columns)
    target = comp.get("target") or columns[max(columns.index("fold") - 1, 0)]
    if target not in columns:
        return f"oof.parquet has no target column '{target}'."
    if scored.height == 0:
        return "No row of oof.parquet was validated."
    id_column = comp.get("id")
    ids = scored[id_column].to_numpy() if id_column and id_column in columns else None
    folds = scored["fold"].to_numpy()
    test = f.test
    if "prediction" in columns:
        tp = (
            test["prediction"].to_numpy().astype(float, copy=False)
            if test is not None and "prediction" in test.columns
            else None
        )
        return Predictions(
            "regression",
            scored[target].cast(pl.Float64, strict=False).to_numpy(),
            scored["prediction"].to_numpy().astype(float, copy=False),
            tp,
            [],
            ids,
            folds,
            target,
            log_scale=_log_scale(f.get("metric", "")),
        )
    proba = [c for c in columns if c.startswith("proba_")]
    if not proba:
        return "oof.parquet has neither a prediction column nor proba_<class> columns."
    classes = [c[len("proba_") :] for c in proba]
    lookup = {str(c): i for i, c in enumerate(comp.get("classes") or classes)}
    # str() of the Python value, as the proba_<class> columns were named (True, not polars' "true")
    # each distinct value looked up once, not a Python object a row (7.5M of them at 10M rows)
    codes = {v: lookup.get(str(v), -1) for v in scored[target].unique().to_list() if v is not None}
    y = (
        scored[target]
        .replace_strict(list(codes), list(codes.values()), default=-1, return_dtype=pl.Int64)
        .to_numpy()
    )
    keep = y >= 0
    if not keep.any():
        return f"No value of the target '{target}' in oof.parquet names one of its proba_<class> columns."
    p = scored.select(proba).to_numpy().astype(float, copy=False)
    tp = (
        test.select(proba).to_numpy().astype(float, copy=False)
        if test is not None and set(proba) <= set(test.columns)
        else None
    )
    task = "binary" if len(classes) == 2 else "multiclass"
    if not keep.all():  # copies only where rows go
        y, p, ids, folds = y[keep], p[keep], None if ids is None else ids[keep], folds[keep]
    return Predictions(
        task, y, p, tp, classes, ids, folds, target, threshold=f.get("threshold") if task == "binary" else None,
    )  # fmt: skip


def _log_scale(metric: str) -> bool:
    from kit import metrics

    return metric in metrics.REGISTRY and metrics.REGISTRY[metric].log_target


def oof_section(f: Folder) -> str:
    p = predictions(f)
    if isinstance(p, str):
        return missing(p)
    if p.task == "regression":
        return _regression(p, metric=f.get("metric", ""))
    return _classification(p)


def _classification(p: Predictions) -> str:
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    k = len(p.classes)
    shown = [1] if k == 2 else list(range(min(k, MAX_CURVES)))
    roc, pr, cal = [], [], []
    for j, c in enumerate(shown):
        positive = (p.y == c).astype(int)
        if positive.min() == positive.max():
            continue  # a class never (or always) seen: no curve
        name = str(p.classes[c]) if k > 2 else f"{p.target} = {p.classes[c]}"
        colour = charts.color(j)
        proba = np.clip(p.oof[:, c], 0, 1)
        fpr, tpr, _ = skm.roc_curve(positive, proba)
        x, y = thin(fpr, tpr, MAX_LINE_POINTS)
        roc.append({"name": f"{name} (AUC {skm.auc(fpr, tpr):.3f})", "x": x, "y": y, "color": colour})
        precision, recall, _ = skm.precision_recall_curve(positive, proba)
        x, y = thin(recall[::-1], precision[::-1], MAX_LINE_POINTS)
        ap = skm.average_precision_score(positive, proba)
        pr.append({"name": f"{name} (AP {ap:.3f})", "x": x, "y": y, "color": colour})
        pr.append({"name": "", "x": [0, 1], "y": [positive.mean()] * 2, "color": colour, "dash": True})
        observed, predicted = calibration_curve(positive, proba, n_bins=CALIBRATION_BINS, strategy="uniform")
        # the rows in each bin, binned as calibration_curve does (it drops the empty ones)
        counts = np.bincount(np.searchsorted(np.linspace(0, 1, CALIBRATION_BINS + 1)[1:-1], proba),
                             minlength=CALIBRATION_BINS)  # fmt: skip
        enough = counts[counts > 0] >= MIN_BIN_ROWS
        observed, predicted = observed[enough], predicted[enough]
        brier = skm.brier_score_loss(positive, proba)
        cal.append(
            {
                "name": f"{name} (Brier {brier:.3f})",
                "x": predicted,
                "y": observed,
                "color": colour,
                "points": True,
            }
        )
    scope = "one class against the rest, per class" if k > 2 else f"positive class {p.classes[1]}"
    if k > MAX_CURVES:
        scope += f" (the first {MAX_CURVES} of {k} classes)"
    square = {"x_range": (0, 1), "y_range": (0, 1)}
    parts = []
    if roc:
        parts += [
            charts.line_chart(roc, title="ROC curve", x_label="false positive rate", y_label="true positive rate",
                              diagonal=True, caption=f"Out-of-fold, {html.escape(scope)}. The diagonal is a guess.",
                              **square),
            charts.line_chart(pr, title="Precision-recall curve", x_label="recall", y_label="precision",
                              caption="Dashed: the share of positives, what a guess reaches.", **square),
            charts.line_chart(cal, title="Calibration", x_label="mean predicted probability",
                              y_label="observed frequency", diagonal=True, **square,
                              caption=f"{CALIBRATION_BINS} equal-width bins of the predicted probability (those "
                              f"with {MIN_BIN_ROWS} rows or more); on the diagonal a probability means what it says."),
        ]  # fmt: skip
    parts.append(f"<div>{_confusion(p)}{_surest_mistakes(p)}</div>")
    return f'<div class="grid">{"".join(parts)}</div>'


def _confusion(p: Predictions) -> str:
    from sklearn.metrics import confusion_matrix

    k = len(p.classes)
    if k > MAX_MATRIX:
        return missing(f"{k} classes: too many for a confusion matrix here.")
    matrix = confusion_matrix(p.y, p.labels(p.oof), labels=np.arange(k))
    totals = matrix.sum(axis=1)
    share = matrix / np.maximum(totals, 1)[:, None]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in p.classes)
    body = []
    for i, c in enumerate(p.classes):
        cells = []
        for j in range(k):
            hue = "78,121,167" if i == j else "225,87,89"  # right in blue, wrong in red
            ink = "#fff" if share[i, j] > 0.55 else "#222"
            cells.append(
                f'<td style="background:rgba({hue},{0.08 + 0.8 * share[i, j]:.2f});color:{ink}">'
                f"{matrix[i, j]:,}<small>{share[i, j]:.0%}</small></td>"
            )
        body.append(
            f'<tr><th>{html.escape(str(c))}</th>{"".join(cells)}<td class="total">{totals[i]:,}</td></tr>'
        )
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    predicted = (
        "the most probable class"
        if p.threshold is None
        else f"the label where P({html.escape(str(p.classes[1]))}) &gt; {p.threshold:.4f} (the run's cut; "
        "its CV cuts each fold where the other folds chose)"
    )
    return (
        '<h4>Confusion matrix</h4><div class="scroll"><table class="matrix"><thead><tr>'
        f'<th class="corner">actual \\ predicted</th>{head}<th>rows</th></tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div><p class="caption">Out-of-fold, {predicted} '
        "against the actual one; each cell is a count and its share of the actual class's rows. "
        f"Accuracy {accuracy:.4f}.</p>"
    )


def _surest_mistakes(p: Predictions) -> str:
    """The rows the model was surest about and got wrong: where to look first."""
    truth = p.oof[np.arange(len(p.y)), p.y]
    predicted = p.labels(p.oof)
    wrong = np.flatnonzero(predicted != p.y)
    if wrong.size == 0:
        return ""
    rows = [
        (p.row(i), html.escape(str(p.classes[p.y[i]])), html.escape(str(p.classes[int(predicted[i])])),
         f"{p.oof[i, predicted[i]]:.3f}", f"{truth[i]:.3f}", int(p.folds[i]) + 1)
        for i in wrong[np.argsort(truth[wrong])][:WORST_ROWS]
    ]  # fmt: skip
    head = ["id", "actual", "predicted", "its probability", "actual's probability", "fold"]
    return (
        '<h4 class="next">Surest mistakes</h4><p class="caption">The rows the model was most sure of and got '
        "wrong: where to look first (a label error, a case the columns cannot tell apart).</p>"
        + table(head, rows, raw=True)
    )


def _regression(p: Predictions, *, metric: str) -> str:
    y, pred = p.scale(p.y), p.scale(p.oof)
    residual = pred - y
    idx = sample(len(y), MAX_SCATTER_POINTS)
    where = f"log1p scale, as {metric} scores it" if p.log_scale else "the target's own units"
    drawn = f"{len(idx):,} of {len(y):,} rows drawn" if len(idx) < len(y) else f"all {len(y):,} rows"
    worst = np.argsort(-np.abs(residual))[:WORST_ROWS]
    rows = [
        (
            p.row(i),
            number(float(p.y[i])),
            number(float(p.oof[i])),
            number(float(residual[i])),
            int(p.folds[i]) + 1,
        )
        for i in worst
    ]
    parts = [
        charts.scatter_chart(y[idx], pred[idx], title="Predicted against actual", x_label=f"actual {p.unit}",
                             y_label=f"predicted {p.unit}", diagonal=True,
                             caption=f"Out-of-fold, {html.escape(where)}; {drawn}. On the diagonal a prediction is exact."),
        charts.scatter_chart(pred[idx], residual[idx], title="Residuals", x_label=f"predicted {p.unit}",
                             y_label="predicted − actual", zero_line=True,
                             caption="A trend or a funnel here is error the model could still learn (a bias, "
                             "or a scale it misses)."),
        charts.histogram_chart([{"name": "residuals", "values": residual}], title="Residual distribution",
                               x_label="predicted − actual",
                               caption=f"Mean {number(float(np.mean(residual)))}, median "
                               f"{number(float(np.median(residual)))}: a centre away from 0 is a bias."),
        '<div><h4>Largest errors</h4><p class="caption">The rows predicted worst: where to look first (an '
        "outlier, a column the model misreads).</p>"
        + table(["id", "actual", "predicted", f"error ({'log1p' if p.log_scale else 'units'})", "fold"], rows, raw=True)
        + "</div>",
    ]  # fmt: skip
    return f'<div class="grid">{"".join(parts)}</div>'


def drift_section(f: Folder) -> str:
    p = predictions(f)
    if isinstance(p, str):
        return missing(p)
    if p.test is None:
        return missing("test_predictions.parquet is absent.")
    intro = (
        '<p class="quiet">The model\'s predictions on the test rows against its out-of-fold predictions on '
        "the training rows. Where the two differ a lot, the test rows are not like the training rows (a shift), "
        "and the CV score may not carry over to the leaderboard.</p>"
    )
    ks = (
        "Kolmogorov-Smirnov distance between the out-of-fold and the test predictions: {:.3f} "
        "(0: the same distribution, 1: disjoint)."
    )
    if p.task == "regression":
        groups = [
            {"name": "actual (train)", "values": p.scale(p.y), "color": "#9c9c9c"},
            {"name": "out-of-fold", "values": p.scale(p.oof), "color": charts.PALETTE[0], "fill": False},
            {"name": "test", "values": p.scale(p.test), "color": charts.PALETTE[1], "fill": False},
        ]
        chart = charts.histogram_chart(groups, title="Distribution of predictions", x_label=p.unit,
                                       caption=ks.format(ks_distance(p.oof, p.test)))  # fmt: skip
        return intro + f'<div class="grid">{chart}{_quantiles(groups, p.unit)}</div>'
    if p.task == "binary":
        oof, test = p.oof[:, 1], p.test[:, 1]
        title = f"Predicted probability of {p.target} = {p.classes[1]}"
    else:
        oof, test = p.oof.max(axis=1), p.test.max(axis=1)
        title = "Probability of the predicted class"
    groups = [{"name": "out-of-fold", "values": oof}, {"name": "test", "values": test, "fill": False}]
    parts = [
        charts.histogram_chart(groups, title=title, x_label="probability", x_range=(0.0, 1.0), bins=25,
                               caption=ks.format(ks_distance(oof, test)))
    ]  # fmt: skip
    k = min(len(p.classes), MAX_MATRIX)
    n = len(p.classes)
    groups = [
        {"name": "actual (train)", "values": np.bincount(p.y, minlength=n)[:k] / len(p.y), "color": "#9c9c9c"},
        {"name": "predicted, out-of-fold", "values": np.bincount(p.labels(p.oof), minlength=n)[:k] / len(p.y)},
        {"name": "predicted, test", "values": np.bincount(p.labels(p.test), minlength=n)[:k] / len(p.test)},
    ]  # fmt: skip
    groups[1]["color"], groups[2]["color"] = charts.PALETTE[0], charts.PALETTE[1]
    parts.append(
        charts.grouped_bar_chart(p.classes[:k], groups, title="Share of rows per class", y_label="share of rows", y_max=1.0,
                                 caption="By the most probable class of each row; a class predicted far more (or "
                                 "less) often on test than out-of-fold is a shift.")
    )  # fmt: skip
    return intro + f'<div class="grid">{"".join(parts)}</div>'


def _quantiles(groups: list[dict], unit: str) -> str:
    """The groups' quantiles side by side: a shift reads as a column of differences."""
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    rows = []
    for g in groups:
        v = np.asarray(g["values"], dtype=float)
        v = v[np.isfinite(v)]
        rows.append((g["name"], *(number(float(x)) for x in np.quantile(v, qs)), number(float(v.mean()))))
    head = ["", *(f"{q:.0%}" for q in qs), "mean"]
    return f"<div><h4>Quantiles of {html.escape(unit)}</h4>{table(head, rows)}</div>"


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs."""
    a, b = np.sort(a[np.isfinite(a)]), np.sort(b[np.isfinite(b)])
    if not a.size or not b.size:
        return float("nan")
    points = np.concatenate([a, b])
    gap = (
        np.searchsorted(a, points, side="right") / a.size - np.searchsorted(b, points, side="right") / b.size
    )
    return float(np.abs(gap).max())
