"""A run's page: the competition, the CV score against the competition's other runs, learning
curves, out-of-fold diagnostics, test against out-of-fold, importance, the blend (for a blend's run
folder) and the config and manifest."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

from kit.reporting import charts, diagnostics
from kit.reporting.folder import Folder, read_json
from kit.reporting.layout import (
    direction_words,
    facts,
    file_list,
    header,
    missing,
    score,
    seconds,
    table,
    thin,
)

MAX_LEADERBOARD = 12
MAX_IMPORTANCE = 25  # columns drawn
# every run's page has these sections, in this order; a blend's adds "blend" after "cv"
RUN_SECTIONS = ("competition", "cv", "curves", "oof", "drift", "importance", "config")


def run_page(f: Folder) -> tuple[str, str, list[tuple[str, str, str]]]:
    """(title, header, sections) of a run's page."""
    name = f.get("competition", f.dest.parent.name)
    track = f.get("track", "run")
    sections = [
        ("competition", "Competition", _competition(f)),
        ("cv", "Cross-validation", _cv(f)),
        *([("blend", "Blend", _blend(f))] if f.blend is not None else []),
        ("curves", "Learning curves", _curves(f)),
        ("oof", "Out-of-fold diagnostics", diagnostics.oof_section(f)),
        ("drift", "Test against out-of-fold predictions", diagnostics.drift_section(f)),
        ("importance", "Feature importance", _importance(f)),
        ("config", "Config and manifest", _config(f)),
    ]
    return f"{name} · {track} · {f.dest.name}", _header(f, name, track), sections


def _header(f: Folder, name: str, track: str) -> str:
    folds = f.get("fold_scores") or []
    spread = f" ± {score(float(np.std(folds)))}" if len(folds) > 1 else ""
    cards = [
        (f"CV {f.get('metric', 'score')}", f"{score(f.get('score'))}{spread}", direction_words(f.get("direction", ""))),
        ("track", str(track), "a blend" if f.blend is not None else ""),
        ("validation", f"{f.get('split', '?')}, {f.get('folds', len(folds))} fold(s)", _seeds(f)),
    ]  # fmt: skip
    if f.get("threshold") is not None:
        cards.append(("labels", f"P > {f.get('threshold'):.4f}", "the cut chosen on the folds"))
    if f.oof is not None:
        test = f"{f.test.height:,} test rows" if f.test is not None else ""
        cards.append(("train rows", f"{f.train_rows:,}", test))
    manifest = f.manifest or {}
    if manifest.get("wall_seconds") is not None:
        cards.append(("wall time", seconds(manifest["wall_seconds"]), manifest.get("started", "")))
    return header(name, f"{track} run · {f.dest.name}", cards)


def _competition(f: Folder) -> str:
    comp = f.competition or {}
    if not comp.get("summary"):
        return missing(
            "competition.json is absent (a run folder from an older kit): run the track again to see what "
            "kit understood about the competition."
        )
    side = []
    notes = comp.get("notes") or []
    if notes:
        items = "".join(f"<li>{html.escape(str(n))}</li>" for n in notes)
        side.append(f'<h3>Notes ({len(notes)})</h3><ul class="notes">{items}</ul>')
    else:
        side.append(
            '<h3>Notes</h3><p class="quiet">None: no column or row was dropped, split or overridden.</p>'
        )
    runtimes = [
        h["runtime"] for h in f.history or [] if isinstance(h, dict) and isinstance(h.get("runtime"), dict)
    ]
    if not runtimes:
        side.append('<p class="quiet">The track recorded no runtime (strategy, precision, batch).</p>')
    elif all(r == runtimes[0] for r in runtimes):
        side.append("<h3>Runtime</h3>" + facts(list(runtimes[0].items())))
    else:
        keys = list(dict.fromkeys(k for r in runtimes for k in r))
        rows = [(k + 1, *[r.get(key, "") for key in keys]) for k, r in enumerate(runtimes)]
        side.append("<h3>Runtime per fold</h3>" + table(["fold", *keys], rows))
    return f'<div class="two">{facts(comp["summary"])}<div>{"".join(side)}</div></div>'


def _cv(f: Folder) -> str:
    if f.metrics is None:
        return missing("metrics.json is absent or unreadable.")
    metric = f.metrics.get("metric", "score")
    scores = f.metrics.get("fold_scores") or []
    history = f.history or []
    counts = f.fold_rows
    best = (max if f.metrics.get("direction") == "maximize" else min)(scores) if scores else None
    rows = []
    for k, s in enumerate(scores):
        h = history[k] if k < len(history) and isinstance(history[k], dict) else {}
        epochs = len(h.get("val_score") or []) + _first_epoch(h)
        best_epoch = h.get("best_epoch")
        rows.append((
            k + 1,
            f"{counts[k]:,}" if k in counts else "",
            score(s) + (" ★" if s == best and len(scores) > 1 else ""),
            epochs or "",
            "" if best_epoch is None or best_epoch < 0 else best_epoch + 1,
        ))  # fmt: skip
    validated = sum(v for k, v in counts.items() if k >= 0)
    rows.append(
        ("all", f"{validated:,}" if counts else "", f"<b>{score(f.metrics.get('score'))}</b>", "", "")
    )
    chart = ""
    if len(scores) > 1:
        chart = charts.dot_chart(
            [f"fold {k + 1}" for k in range(len(scores))],
            np.array(scores),
            title="Score per fold",
            x_label=metric,
            reference=f.metrics.get("score"),
            reference_name="CV score (all folds)",
            caption="The spread between folds is the noise to expect in the gain of a change.",
        )
    folds = table(["fold", "rows", metric, "epochs", "best epoch"], rows, raw=True)
    return (
        f'<div class="two"><div>{folds}</div>{chart}</div>'
        f"<h3>Leaderboard of this competition's runs</h3>{_leaderboard(f)}"
    )


def _leaderboard(f: Folder) -> str:
    """The runs beside this one (kit.run_folder.leaderboard's rows and order), this one marked, linked to
    their own reports."""
    from kit.run_folder import leaderboard_beside

    me = f.metrics or {}
    try:
        rows = leaderboard_beside(f.dest)
    except OSError:
        rows = []
    rows = [
        r for r in rows
        if Path(r["run_dir"]).resolve() != f.dest.resolve()  # its own earlier version, being replaced
        and r.get("competition") == me.get("competition") and r.get("metric") == me.get("metric")
    ]  # fmt: skip
    if me.get("score") is None or not rows:
        return (
            f'<p class="quiet">No other run of this competition in {html.escape(str(f.dest.parent))} yet.</p>'
        )
    rows.append({**me, "run_dir": str(f.dest), "this": True})
    sign = -1 if me.get("direction") == "maximize" else 1
    rows.sort(key=lambda r: sign * r["score"])
    shown = [(i, r) for i, r in enumerate(rows) if i < MAX_LEADERBOARD or r.get("this")]
    cells = []
    for i, r in shown:
        name = html.escape(Path(r["run_dir"]).name)
        if r.get("this"):
            name = f"<b>{name} (this run)</b>"
        elif (Path(r["run_dir"]) / "report.html").is_file():
            name = f'<a href="../{name}/report.html">{name}</a>'
        cells.append((
            i + 1, name, html.escape(str(r.get("track", ""))), score(r["score"]),
            "" if i == 0 else score(r["score"] - rows[0]["score"]),
            html.escape(f"{r.get('split', '')} × {r.get('folds', '')}"), r.get("seed", ""),
        ))  # fmt: skip
    marked = [j for j, (_, r) in enumerate(shown) if r.get("this")]
    head = ["#", "run", "track", me.get("metric", "score"), "to the best", "split × folds", "seed"]
    more = len(rows) - len(shown)
    return table(head, cells, raw=True, highlight=marked) + (
        f'<p class="quiet">{more} more run(s) not shown.</p>' if more else ""
    )


def _curves(f: Folder) -> str:
    folds = [h for h in f.history or [] if isinstance(h, dict)]
    # gradient-boosted trees record a loss per boosting iteration, a validation loss and no score
    boosted = any(h.get("val_loss") and not h.get("val_score") for h in folds)
    unit = "boosting iteration" if boosted else "epoch"
    if not any(h.get("loss") or h.get("val_score") for h in folds):
        return missing(
            "No history.json with epochs: the track returned no history (FoldResult.history), so there are "
            "no learning curves."
        )
    metric = f.get("metric", "score")
    loss, val, val_loss, markers, best = [], [], [], [], []
    for k, h in enumerate(folds):
        offset = _first_epoch(h)
        colour = charts.color(k)
        for key, into in (("loss", loss), ("val_score", val), ("val_loss", val_loss)):
            ys = np.asarray(h.get(key) or [], dtype=float)
            if ys.size:
                xs, ys = thin(offset + 1 + np.arange(ys.size), ys, diagnostics.MAX_LINE_POINTS)
                into.append({"name": f"fold {k + 1}", "x": xs, "y": ys, "color": colour})
        scores = h.get("val_score") or []
        epoch = h.get("best_epoch")
        if epoch is not None and 0 <= epoch - offset < len(scores):
            markers.append({"x": epoch + 1, "y": scores[epoch - offset], "color": colour,
                            "title": f"fold {k + 1}: best epoch {epoch + 1}"})  # fmt: skip
            best.append(f"fold {k + 1}: {epoch + 1} of {offset + len(scores)}")
    parts = []
    n_seeds = int(f.get("seeds") or 1)
    seeds_said = (
        f" Each fold's first seed of {n_seeds}; the fold's score averages their predictions."
        if n_seeds > 1
        else ""
    )
    if loss:
        parts.append(
            charts.line_chart(loss, title=f"Training loss per {unit}", x_label=unit, y_label="loss",
                              caption="On each fold's training rows" + ("." if boosted else ", as the epoch ran (dropout on)."))
        )  # fmt: skip
    if val_loss and boosted:
        parts.append(
            charts.line_chart(val_loss, title=f"Validation loss per {unit}", x_label=unit, y_label="loss",
                              caption="The loss the trees' early stopping watched.")
        )  # fmt: skip
    if val:
        parts.append(
            charts.line_chart(val, title=f"Validation {metric} per epoch", x_label="epoch", y_label=metric,
                              markers=markers, caption="Ringed: the best epoch, whose weights were kept. "
                              + html.escape("; ".join(best)) + "." + seeds_said)
        )  # fmt: skip
    return (
        '<p class="quiet">A training loss still falling while the validation score has turned is overfitting; '
        "the ring is where early stopping took the weights from.</p>"
        f'<div class="grid">{"".join(parts)}</div>'
    )


def _importance(f: Folder) -> str:
    info = f.importance
    if info is None:
        return missing(
            "No importance.json: the track returned no predict function for its folds "
            "(<code>FoldResult(val, test, predict=fn)</code>, fn: rows like the fold's validation rows to "
            "predictions), so kit could not shuffle columns through its model.",
            raw=True,
        )
    if info.get("error"):
        return missing(f"Permutation importance failed: {info['error']}")
    features = info.get("features") or []
    if not features:
        return missing("Permutation importance measured no column.")
    top = features[:MAX_IMPORTANCE]
    metric = info.get("metric", "score")
    repeats = info.get("repeats") or 1
    shuffles = (
        f"averaged over {repeats} shuffles; the whisker is their spread"
        if repeats > 1
        else "one shuffle each"
    )
    caption = (
        f"How much worse {metric} gets when a column's values are shuffled among {info.get('rows', 0):,} "
        f"validation rows of fold {int(info.get('fold', 0)) + 1} (there {score(info.get('baseline'))}), "
        f"{shuffles}. Measured in {info.get('seconds', 0):.2f} s, within the run's time cap."
    )
    if len(features) > len(top):
        caption += f" The top {len(top)} of {len(features)} columns."
    if info.get("skipped"):
        caption += f" Not measured within the time cap: {', '.join(map(str, info['skipped']))}."
    chart = charts.bar_chart(
        [str(t["feature"]) for t in top],
        np.array([t["importance"] for t in top]),
        errors=np.array([t.get("std", 0.0) for t in top]),
        title=f"Permutation importance on {metric}",
        x_label=f"{metric} worse by (longer: the column matters more)",
        caption=html.escape(caption),
        width=760,
    )
    return (
        '<p class="quiet">A column near zero or below adds nothing the others do not already give (or only '
        "noise); correlated columns share their importance.</p>" + chart
    )


def _blend(f: Folder) -> str:
    """The members, their weights and CV, the blend's CV and its gain over the best member, from
    whatever blend.json holds (and the members' own metrics.json where it names their folders)."""
    blend = f.blend or {}
    metric = blend.get("metric") or f.get("metric", "score")
    direction = blend.get("direction") or f.get("direction", "maximize")
    members = blend_members(blend, f.path)
    cv = blend.get("score", blend.get("cv", f.get("score")))
    if not members:
        return missing("blend.json lists no members.")
    out = []
    rows = []
    for m in members:
        name = html.escape(str(m["name"]))
        report = m.get("path") and Path(m["path"]) / "report.html"
        if report and report.is_file():
            name = f'<a href="{html.escape(os.path.relpath(report, f.dest))}">{name}</a>'
        weight = "" if m.get("weight") is None else f"{float(m['weight']):.3f}"
        rows.append((name, html.escape(str(m.get("track") or "")), score(m.get("score")), weight))
    weighted = [m for m in members if m.get("weight") is not None]
    total = f"{sum(float(m['weight']) for m in weighted):.3f}" if weighted else ""
    rows.append(("<b>blend</b>", "", f"<b>{score(cv)}</b>", total))
    out.append(table(["member", "track", f"CV {metric}", "weight"], rows, raw=True))
    scored = [m for m in members if isinstance(m.get("score"), int | float)]
    if scored and isinstance(cv, int | float):
        best = (max if direction == "maximize" else min)(scored, key=lambda m: m["score"])
        gain = (cv - best["score"]) * (1 if direction == "maximize" else -1)
        word = "better" if gain > 0 else "worse" if gain < 0 else "no better"
        out.append(
            f'<p class="gain">The blend is <b>{score(abs(gain))} {word}</b> than its best member '
            f"({html.escape(str(best['name']))}, {score(best['score'])}) in CV {html.escape(str(metric))}.</p>"
        )
    if weighted:
        names = [str(m["name"]) for m in weighted]
        out.append(charts.bar_chart(names, np.array([float(m["weight"]) for m in weighted]), title="Weights",
                                    x_label="weight"))  # fmt: skip
    rest = [
        (k, v)
        for k, v in blend.items()
        if isinstance(v, str | int | float | bool) and k not in ("score", "cv")
    ]
    if rest:
        out.append("<h3>blend.json</h3>" + facts(rest))
    return "".join(out)


def blend_members(blend: dict, folder: Path) -> list[dict]:
    """blend.json's members in one shape, whichever spelling it uses: "members" (or "runs") as a
    list of names or folders or of {name, run_dir/path, weight, score/cv, track}, or a name ->
    weight table; "weights" as a list in member order or a name -> weight table. A member's CV
    and track come from its own metrics.json where its folder is found (as given, or beside the
    blend's folder)."""
    raw = blend.get("members") or blend.get("runs") or []
    weights = blend.get("weights")
    if isinstance(raw, dict):
        raw = [{"name": k, **(v if isinstance(v, dict) else {"weight": v})} for k, v in raw.items()]
    if not raw and isinstance(weights, dict):
        raw = list(weights)
    members = []
    for i, item in enumerate(raw):
        m = dict(item) if isinstance(item, dict) else {"name": str(item)}
        where = m.get("run_dir") or m.get("path") or m.get("run") or m.get("name")
        path = Path(str(where)) if where else None
        if path is not None and not path.is_absolute():
            path = folder / path if (folder / path).exists() else folder.parent / path
        elif path is not None and not path.exists() and (folder.parent / path.name).is_dir():
            path = folder.parent / path.name  # moved with the blend (a Kaggle output downloaded)
        m["name"] = m.get("name") or (path.name if path else f"member {i + 1}")
        if isinstance(weights, dict):
            m.setdefault("weight", weights.get(m["name"], weights.get(str(where))))
        elif isinstance(weights, list) and i < len(weights):
            m.setdefault("weight", weights[i])
        if m.get("score") is None:
            m["score"] = m.get("cv")
        info = read_json(path / "metrics.json") if path is not None else None
        if isinstance(info, dict):
            m["path"] = path
            if m["score"] is None:
                m["score"] = info.get("score")
            m.setdefault("track", info.get("track"))
        members.append(m)
    return members


def _phases(phases: dict) -> str:
    """'before run 1.2 · import tensorflow 2.7 · folds 12.1 (first fold +2.5) · ...'"""
    parts = []
    for name, value in phases.items():
        if name == "first_fold_extra" or value is None:
            continue
        if isinstance(value, list):
            extra = phases.get("first_fold_extra")
            value = f"{sum(value):.1f}" + (f" (first fold +{extra:.1f})" if extra else "")
        else:
            value = f"{value:.1f}"
        parts.append(f"{name.replace('_', ' ')} {value}")
    return " · ".join(parts)


def _config(f: Folder) -> str:
    out = []
    manifest = f.manifest or {}
    if manifest:
        keys = ("track", "seed", "started", "wall_seconds", "peak_rss_mib", "git_commit", "data")
        rows = [(k, manifest[k]) for k in keys if k in manifest]
        if isinstance(manifest.get("phases"), dict):
            rows.append(("seconds by phase", _phases(manifest["phases"])))
        command = manifest.get("command")
        if command:
            rows.append(("command", " ".join(map(str, command)) if isinstance(command, list) else command))
        versions = table(["package", "version"], list((manifest.get("versions") or {}).items()))
        out.append(
            f'<div class="two"><div><h3>Manifest</h3>{facts(rows)}</div><div><h3>Versions</h3>{versions}</div></div>'
        )
    else:
        out.append(missing("manifest.json is absent."))
    if f.config:
        out.append(
            '<h3>config.toml</h3><p class="quiet">Pass it back with <code>--config</code> to reproduce the run.</p>'
            f"<pre>{html.escape(f.config)}</pre>"
        )
    out.append(file_list(sorted({*f.files, "report.html"})))
    return "".join(out)


def _seeds(f: Folder) -> str:
    n = int(f.get("seeds") or 1)
    return f"seed {f.get('seed', '?')}" + (f", {n} seeds a fold" if n > 1 else "")


def _first_epoch(history: dict) -> int:
    """The epoch a fold's lists start at: 0, or where a resume lost the epochs before it (a run
    folder written before the lists were kept with the checkpoints says only `resumed_at`)."""
    return int(history.get("first_epoch", history.get("resumed_at")) or 0)
