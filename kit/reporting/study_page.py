"""A tuning study's page: optimization history, parameter importances, the best trial, the best
trials, the search space and best.toml, from the tuning folder's summary.json and trials.csv."""

from __future__ import annotations

import base64
import html

import numpy as np
import polars as pl

from kit.reporting import charts
from kit.reporting.folder import Folder, read_json
from kit.reporting.layout import direction_words, file_list, header, missing, score, seconds, table, value

STUDY_SECTIONS = ("history", "importances", "best", "trials", "config")
TOP_TRIALS = 15


def study_page(f: Folder) -> tuple[str, str, list[tuple[str, str, str]]]:
    """(title, header, sections) of a study's page."""
    s = f.summary
    name = s.get("competition", f.dest.parent.name)
    counts = s.get("trials") or {}
    cards = [
        (f"best {s.get('metric', 'score')}", score(s.get("best_score")), direction_words(s.get("direction", ""))),
        ("best trial", str(s.get("best_trial", "–")), ""),
        ("trials", f"{counts.get('complete', 0)} complete", f"{counts.get('pruned', 0)} pruned, {counts.get('fail', 0)} failed"
         + (f", {counts['stopped']} stopped and run again" if counts.get("stopped") else "")),
        ("time", seconds(s.get("seconds")), f"storage {s.get('storage', '')}"),
    ]  # fmt: skip
    subtitle = f"study {s.get('study', '')} of the {s.get('track', '')} track · {f.dest.name}"
    sections = [
        ("history", "Optimization history", _history(f)),
        ("importances", "Parameter importances", _importances(f)),
        ("best", "Best trial", _best(f)),
        ("trials", "Trials", _trials(f)),
        ("config", "Search space and best config", _config(f)),
    ]
    return (
        f"{name} · tuning {s.get('track', '')} · {s.get('study', f.dest.name)}",
        header(name, subtitle, cards),
        sections,
    )


def _complete(f: Folder) -> pl.DataFrame | None:
    t = f.trials
    if t is None or not {"number", "state", "value"} <= set(t.columns):
        return None
    return t.filter(pl.col("state") == "complete").with_columns(
        pl.col("value").cast(pl.Float64, strict=False)
    )


def _history(f: Folder) -> str:
    done = _complete(f)
    if done is None or done.is_empty():
        return missing("No trial has completed yet.")
    done = done.sort("number")
    x = done["number"].to_numpy().astype(float)
    v = done["value"].to_numpy()
    best = np.fmax.accumulate(v) if f.summary.get("direction") == "maximize" else np.fmin.accumulate(v)
    pruned = f.trials.filter(pl.col("state") == "pruned").height
    metric = f.summary.get("metric", "score")
    series = [
        {"name": "trial", "x": x, "y": v, "color": charts.PALETTE[0], "points": True, "line": False},
        {"name": "best so far", "x": x, "y": best, "color": charts.PALETTE[2]},
    ]
    return charts.line_chart(
        series,
        title=f"CV {metric} by trial",
        x_label="trial",
        y_label=metric,
        caption=f"Completed trials; {pruned} pruned trial(s) were stopped early and have no value.",
    )


def _importances(f: Folder) -> str:
    importances = f.summary.get("importances")
    if importances:
        names = list(importances)
        return charts.bar_chart(
            names,
            np.array([float(importances[n]) for n in names]),
            title="fANOVA importance of each parameter",
            x_label="share of the spread in trial values",
            caption="How much of the spread in the trials' values each parameter explains (Optuna's fANOVA "
            "evaluator, seeded).",
        )
    png = f.path / "importances.png"  # a study summarized before summary.json held them
    if png.is_file():
        data = base64.b64encode(png.read_bytes()).decode()
        return f'<img class="plot" alt="parameter importances" src="data:image/png;base64,{data}">'
    return missing("No importances yet: they need at least two completed trials that differ.")


def _best(f: Folder) -> str:
    s = f.summary
    params = s.get("best_params") or {}
    if not params:
        return missing("No trial has completed yet.")
    out = [table(["parameter", "value"], list(params.items()))]
    info = read_json(f.path / "best" / "metrics.json")
    if isinstance(info, dict):
        folds = ", ".join(score(v) for v in info.get("fold_scores") or [])
        link = (
            '<a href="best/report.html">best/report.html</a>'
            if (f.path / "best" / "report.html").is_file()
            else "best/"
        )
        out.append(
            f"<p>The best trial's run folder: CV {html.escape(str(info.get('metric', '')))} "
            f"<b>{score(info.get('score'))}</b> (folds: {folds}); its own report: {link}. Run it again with "
            f"<code>kit {html.escape(str(s.get('track', '')))} DATA --config best.toml</code>.</p>"
        )
    return "".join(out)


def _trials(f: Folder) -> str:
    done = _complete(f)
    if done is None:
        return missing("trials.csv is absent or has no values.")
    params = [c for c in done.columns if c.startswith("param_")]
    top = done.sort("value", descending=f.summary.get("direction") == "maximize", nulls_last=True).head(
        TOP_TRIALS
    )
    rows = [
        (r["number"], score(r["value"]), seconds(r.get("seconds")), *[r.get(c) for c in params])
        for r in top.iter_rows(named=True)
    ]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(f.trials.group_by("state").len().iter_rows()))
    head = ["trial", f.summary.get("metric", "score"), "seconds", *[c[len("param_") :] for c in params]]
    return f'<p class="quiet">{html.escape(counts)}; the best {len(rows)} completed, best first.</p>' + table(
        head, rows
    )


def _config(f: Folder) -> str:
    out = []
    space = f.summary.get("search_space") or {}
    if space:
        out.append(table(["parameter", "searched"], [(k, value(v)) for k, v in space.items()]))
    if f.config:
        out.append(f"<h3>best.toml</h3><pre>{html.escape(f.config)}</pre>")
    out.append(file_list(f.files))
    return "".join(out)
