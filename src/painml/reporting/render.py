"""The reviewer report: one self-contained HTML file a clinician or auditor can read.

Rendered from :class:`painml.reporting.gather.ReportInputs`: handed over by training in-process, or rebuilt
from an MLflow run by :mod:`painml.jobs.report`. Python gathers the numbers, words and decisions of each
section into a plain dict; the Jinja templates in ``templates/`` hold all the markup and escape every value.
The page embeds every image as a base64 PNG, inlines its CSS, has no script and needs no network, and is
logged back to the run as ``report/report.html``.

Privacy: patient identifiers never appear (gallery patients are "example patient 1..N"; :func:`render`
checks the finished page); site names appear only in aggregate tables.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from painml.evaluation import metrics as evaluate
from painml.evaluation import plots as evaluation_plots
from painml.evaluation.intervals import BOOTSTRAP_REPS, CI_LEVEL, bootstrap_intervals
from painml.explain import plots as explain_plots
from painml.explain import shap
from painml.explain.reasons import reasons_text
from painml.features.encoding import record_columns, screening_scores
from painml.model.conformal import prediction_sets
from painml.record.columns import BY_NAME
from painml.record.vocabulary import block_title, display_name
from painml.reporting.gather import ReportInputs, component_table, missingness

REPORT_FILE = "report.html"

SECTIONS = {
    "purpose": "What this model is for, and what it is not",
    "data": "Data",
    "performance": "Performance",
    "subgroups": "Subgroups",
    "explanations": "Global explanations",
    "gallery": "Example patients",
    "model-card": "Model card (TRIPOD+AI)",
}
"""Section id -> heading, in page order; each id has its template ``templates/section-<id>.html``."""

_NUMBER = (int, float, np.integer, np.floating)


@cache
def _environment() -> Environment:
    """Built once, on first use. StrictUndefined makes a key missing from a section's context an error, not a
    silent blank; trim/lstrip_blocks keep the templates' block tags from leaving stray whitespace."""
    return Environment(
        loader=PackageLoader("painml.reporting", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(inputs: ReportInputs, max_rows: int = 2000) -> str:
    """The whole page as one HTML string."""
    bundle = inputs.bundle
    classes = bundle.classes
    test = inputs.rows["test"]
    frame_test = inputs.frame.iloc[test]
    y_test = inputs.y[test]
    features = frame_test.loc[:, [c for c in frame_test.columns if c in BY_NAME and BY_NAME[c].kind != "id"]]
    proba = inputs.proba if inputs.proba is not None else bundle.predict_proba(features)
    y_index = np.array([classes.index(v) for v in y_test])
    intervals = bootstrap_intervals(y_index, proba)
    header = _header(inputs)
    content = {
        "purpose": _purpose(inputs),
        "data": _data(inputs),
        "performance": _performance(inputs, proba, intervals),
        "subgroups": _subgroups(inputs),
        "explanations": _explanations(inputs, features, frame_test, max_rows),
    }
    content["gallery"], example_ids = _gallery(inputs, features, frame_test, y_test, proba)
    content["model-card"] = _model_card(inputs, intervals)
    env = _environment()
    # Our own stylesheet, read as text rather than rendered: CSS braces must never be parsed as Jinja syntax.
    css = Markup(env.loader.get_source(env, "report.css")[0])
    page = env.get_template("report.html").render(header=header, css=css, sections=SECTIONS, content=content)
    _check_no_identifiers(page, example_ids)
    return page


def _check_no_identifiers(page: str, ids: list[str]) -> None:
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    leaked = [i for i in ids if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", text)]
    if leaked:
        raise RuntimeError(f"the report would show {len(leaked)} patient identifiers; refusing to write it")


# --------------------------------------------------------------------------- formatting helpers


def _png(fig, dpi: int = 96) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    """The payload of a ``data:image/png;base64,`` URI: images travel inside the page."""
    return base64.b64encode(data).decode("ascii")


def _fmt(value: Any, kind: str = "num") -> str:
    """One number as the page shows it ("—" when missing); the template escapes it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "int":
        return f"{int(value):,}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _table(
    frame: pd.DataFrame,
    kinds: dict[str, str] | None = None,
    row_class: Callable[[Any, pd.Series], str] | None = None,
    index: bool = False,
) -> dict[str, Any]:
    """A DataFrame as the ``table`` macro's input: cells formatted here, numbers marked to be right-aligned."""
    kinds = kinds or {}
    head = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for key, row in frame.iterrows():
        cells = [
            {"text": _fmt(row[col], kinds.get(col, "num")), "numeric": isinstance(row[col], _NUMBER)}
            for col in frame.columns
        ]
        rows.append(
            {"cls": row_class(key, row) if row_class else "", "key": str(key) if index else None, "cells": cells}
        )
    return {"head": head, "rows": rows}


_FAMILY_WORDS = {"gbm": "gradient-boosted trees (LightGBM)", "logistic": "multinomial logistic regression"}


def _family_words(family: str) -> str:
    return _FAMILY_WORDS.get(family, family)


def _data_source(inputs: ReportInputs) -> dict[str, str]:
    """Where the rows came from, for the ``data_words`` macro: a file is "real" only if it lacks simulator truth."""
    lineage = inputs.lineage
    if lineage.get("source") == "simulate":
        return {
            "kind": "simulator",
            "preset": str(lineage.get("preset")),
            "n": f"{int(lineage.get('n', 0)):,}",
            "seed": str(lineage.get("seed")),
        }
    return {
        "kind": "simulated file" if inputs.simulated else "file",
        "name": Path(str(lineage.get("path", "?"))).name,
        "sha": str(lineage.get("sha256", ""))[:16],
    }


# --------------------------------------------------------------------------- sections


def _header(inputs: ReportInputs) -> dict[str, Any]:
    return {
        "run_id": inputs.run_id,
        "run_name": inputs.run_name,
        "started": inputs.started,
        "config": inputs.cfg.name,
        "commit": inputs.tags.get("git.commit", "unknown")[:12],
        "dirty": inputs.tags.get("git.dirty") == "True",
        "family": _family_words(inputs.winner),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _purpose(inputs: ReportInputs) -> dict[str, Any]:
    return {
        "simulated": inputs.simulated,
        "classes": ", ".join(inputs.bundle.classes),
        "source": _data_source(inputs),
        "confidence": f"{inputs.cfg.conformal_confidence:.0%}",
    }


def _data(inputs: ReportInputs) -> dict[str, Any]:
    frame, y, rows = inputs.frame, inputs.y, inputs.rows
    classes = inputs.bundle.classes
    splits = pd.DataFrame({"rows": {k: len(v) for k, v in rows.items()}})
    splits["share"] = splits["rows"] / len(frame)
    splits.index.name = "split"
    splits["used for"] = pd.Series(
        {
            "train": "fitting the model (early stopping on a slice of it)",
            "calibration": f"{inputs.cfg.calibration} calibration of the probabilities",
            "conformal": "the prediction-set threshold",
            "test": "every number in this report",
        }
    )
    test = rows["test"]
    shares = pd.DataFrame(
        {
            "all rows": pd.Series(y).value_counts().reindex(classes, fill_value=0),
            "all rows share": pd.Series(y).value_counts(normalize=True).reindex(classes, fill_value=0),
            "test rows": pd.Series(y[test]).value_counts().reindex(classes, fill_value=0),
            "test share": pd.Series(y[test]).value_counts(normalize=True).reindex(classes, fill_value=0),
        }
    )
    shares.index.name = "class"
    miss = missingness(frame).set_index("block")
    sites = frame["site"].fillna("unknown").astype(str)
    site_table = pd.crosstab(sites, pd.Series(y, index=frame.index, name="class"), normalize="index")
    site_table = site_table.reindex(columns=classes, fill_value=0.0)
    site_table.insert(0, "rows", sites.value_counts().reindex(site_table.index))
    site_table.index.name = "site"
    site_table.columns = ["rows", *[f"{c} share" for c in classes]]
    kinds_sites = {f"{c} share": "pct" for c in classes} | {"rows": "int"}
    return {
        "n_patients": f"{len(frame):,}",
        "n_sites": sites.nunique(),
        "seed": inputs.cfg.seed,
        "splits": _table(splits, {"rows": "int", "share": "pct"}, index=True),
        "shares": _table(
            shares, {"all rows": "int", "all rows share": "pct", "test rows": "int", "test share": "pct"}, index=True
        ),
        "sites": _table(site_table, kinds_sites, index=True),
        "missing": _table(
            miss, {"columns": "int", "rows with the whole block missing": "pct", "cells missing": "pct"}, index=True
        ),
    }


def _performance(inputs: ReportInputs, proba: np.ndarray, intervals: pd.DataFrame) -> dict[str, Any]:
    cmp = inputs.comparison.copy()
    cmp.index.name = "model"
    winner = inputs.winner

    def row_class(key, row) -> str:
        if key == winner:
            return "winner"
        return "ceiling" if "ceiling" in str(key) else ""

    cmp.columns = [c.replace("_", " ") for c in cmp.columns]
    ci = intervals.copy()
    ci["95% interval"] = [f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(ci["low"], ci["high"])]
    ci = ci.set_index("metric")[["estimate", "95% interval"]]
    ci.index = [i.replace("_", " ") for i in ci.index]
    ci.index.name = "metric"
    m = inputs.metrics
    coverage = m.get(f"{winner}.test_conformal_coverage", m.get("test_conformal_coverage"))
    size = m.get(f"{winner}.test_conformal_set_size", m.get("test_conformal_set_size"))
    y_test = inputs.y[inputs.rows["test"]]
    classes = inputs.bundle.classes
    images = inputs.images
    if "confusion" not in images:
        pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        images["confusion"] = _png(
            evaluation_plots.plot_confusion(
                evaluate.confusion(y_test, pred, classes), f"{winner}: confusion matrix (test)"
            )
        )
    if "calibration" not in images:
        images["calibration"] = _png(
            evaluation_plots.plot_calibration(y_test, proba, classes, f"{winner}: calibration (test)")
        )
    tools = component_table(inputs.baselines, y_test, proba, classes, winner).set_index("tool")
    tools.columns = [c.replace("_", " ") for c in tools.columns]
    beta = inputs.bundle.temperature_factor
    return {
        "n_test": f"{len(y_test):,}",
        "ceiling": "exact posterior (ceiling)" in inputs.comparison.index,
        "comparison": _table(cmp, row_class=row_class, index=True),
        "comparison_title": f"{_count_words(len(inputs.bundle.classes))} classes: test-set metrics "
        "(higher is better except log loss, Brier and ECE)",
        "intervals": _table(ci, index=True),
        "family": _family_words(winner),
        "ci_level": f"{CI_LEVEL:.0%}",
        "reps": BOOTSTRAP_REPS,
        "confidence": f"{inputs.cfg.conformal_confidence:.0%}",
        "coverage": _fmt(coverage, "pct"),
        "set_size": _fmt(size),
        "confusion": _b64(images["confusion"]),
        "calibration_curves": _b64(images["calibration"]),
        "tools": _table(
            tools,
            {"coverage": "pct"},
            index=True,
            row_class=lambda key, _: "winner" if str(key).startswith(winner) else "",
        )
        if len(tools)
        else None,
        "calibration": inputs.cfg.calibration,
        "beta": f"{beta:.3f}" if beta else None,
        "ece": _fmt(m.get("test_ece")),
        "brier": _fmt(m.get("test_brier")),
    }


def _subgroups(inputs: ReportInputs) -> dict[str, Any]:
    table = inputs.subgroups
    if table.empty:
        return {"table": None}
    keep = [
        c
        for c in ("group", "level", "n", "macro_f1", "balanced_accuracy", "accuracy", "log_loss", "ece", "flag")
        if c in table.columns
    ]
    shown = table[keep].copy()
    shown["flag"] = shown["flag"].astype(object).fillna("") if "flag" in shown else ""
    flagged = shown[shown["flag"] == "markedly worse"]

    def row_class(_, row) -> str:
        return {"markedly worse": "flag", "too few rows": "few"}.get(row.get("flag", ""), "")

    shown.columns = [c.replace("_", " ") for c in shown.columns]
    return {
        "f1_drop": f"{evaluate.WORSE_F1_DROP:.2f}",
        "loss_ratio": f"{evaluate.WORSE_LOG_LOSS_RATIO - 1:.0%}",
        "flagged": [f"{g} = {v}" for g, v in zip(flagged["group"], flagged["level"])],
        "table": _table(shown.reset_index(drop=True), {"n": "int"}, row_class=row_class),
    }


def _explanations(inputs: ReportInputs, features: pd.DataFrame, frame: pd.DataFrame, max_rows: int) -> dict[str, Any]:
    """Reuses the SHAP figures the run logged when there are any; otherwise explains a sample of the test rows."""
    shap_dir = inputs.shap_dir
    if shap_dir is not None and (shap_dir / "mean_abs_shap.csv").exists():
        table = pd.read_csv(shap_dir / "mean_abs_shap.csv", index_col=0)
        images = {p.stem: p.read_bytes() for p in shap_dir.glob("*.png")}
        n_rows = min(len(frame), max_rows)
    else:
        rows = shap.sample_positions(len(frame), max_rows)
        explanation = shap.explain(inputs.bundle, features.iloc[rows], frame.iloc[rows])
        images = {name: _png(fig) for name, fig in explain_plots.global_figures(explanation).items()}
        table = explain_plots.mean_abs(explanation)
        n_rows = len(rows)
    per_class = []
    for c in inputs.bundle.classes:
        key = explain_plots.file_stem(c)
        bee, bar = images.get(f"beeswarm_{key}"), images.get(f"bar_{key}")
        if bee is None or bar is None:
            continue
        top = [display_name(f) for f in table[c].sort_values(ascending=False).index[:3]]
        per_class.append({"name": c, "top": ", ".join(top), "beeswarm": _b64(bee), "bar": _b64(bar)})
    dependence = [f"dependence_{explain_plots.file_stem(f)}" for f in table.index]
    comparison = images.get("class_comparison")
    return {
        "n_rows": f"{n_rows:,}",
        "classes": per_class,
        "beeswarm_note": explain_plots.BEESWARM_NOTE,
        "comparison": _b64(comparison) if comparison else None,
        "dependence": [_b64(images[name]) for name in dependence if name in images],
    }


def _gallery(
    inputs: ReportInputs, features: pd.DataFrame, frame: pd.DataFrame, y_test: np.ndarray, proba: np.ndarray
) -> tuple[dict[str, Any], list[str]]:
    """The example cards, and the chosen patients' identifiers so :func:`render` can check none leaked."""
    classes = inputs.bundle.classes
    examples = shap.pick_examples(proba, classes, y_test)
    ids = [str(v) for v in frame["patient_id"].iloc[[e.position for e in examples]]] if "patient_id" in frame else []
    if not examples:
        return {"cards": []}, ids
    positions = [e.position for e in examples]
    chosen = shap.explain(inputs.bundle, features.iloc[positions], frame.iloc[positions])
    qhat = inputs.bundle.metadata.thresholds
    sets = prediction_sets(proba[positions], qhat) if qhat is not None else None
    cards = []
    for n, ex in enumerate(examples, start=1):
        i, k = n - 1, ex.class_index
        predicted, truth = classes[k], str(y_test[ex.position])
        p = float(proba[ex.position, k])
        title = f"Example patient {n}: why {predicted} (probability {p:.0%})"
        fig = explain_plots.plot_waterfall(chosen, i, k, title=title, subtitle=ex.caption)
        members = [c for c, keep in zip(classes, sets[i]) if keep] if sets is not None else None
        cards.append(
            {
                "n": n,
                "caption": ex.caption,
                "predicted": predicted,
                "truth": truth,
                "correct": truth == predicted,
                "probabilities": ", ".join(f"{c} {proba[ex.position, j]:.0%}" for j, c in enumerate(classes)),
                "prediction_set": " or ".join(members) if members is not None else None,
                "reasons": reasons_text(chosen, i, k, n=4, plain=True),
                "waterfall": _b64(_png(fig)),
            }
        )
    return {"cards": cards}, ids


def _model_card(inputs: ReportInputs, intervals: pd.DataFrame) -> dict[str, Any]:
    cfg, bundle = inputs.cfg, inputs.bundle
    classes = bundle.classes
    groups = cfg.features.groups
    family_cfg = next(m for m in cfg.models if m.family == inputs.winner)
    chosen = dict(bundle.metadata.hyperparameters) or family_cfg.model_dump()  # after any search
    params = ", ".join(f"{k} = {v}" for k, v in chosen.items() if k != "family")
    model = bundle.pipeline.named_steps["model"]
    if hasattr(model, "booster_"):
        params += f"; {model.booster_.current_iteration()} boosting rounds kept after early stopping"
    m = inputs.metrics
    counts = pd.Series(inputs.y[inputs.rows["train"]]).value_counts().reindex(classes, fill_value=0)
    beta = bundle.temperature_factor
    missing_words = (
        "LightGBM sends missing values down the branch it learnt for them; category columns get a "
        '"not recorded" level of their own'
        if inputs.winner == "gbm"
        else "numbers are filled with the training median and a missing-value indicator is added per column "
        '(both standardised); category columns get a "not recorded" level of their own'
    )
    others = [_family_words(f.family) for f in cfg.models if f.family != inputs.winner]
    return {
        "source": _data_source(inputs),
        "simulated": inputs.simulated,
        "n_sites": inputs.frame["site"].nunique(),
        "classes": ", ".join(classes),
        "n_columns": len(record_columns(groups)),
        "blocks": ", ".join(block_title(g).name for g in groups if g != "screening"),
        "scores": ", ".join(screening_scores(groups)),
        "n_patients": f"{len(inputs.frame):,}",
        "n_train": f"{len(inputs.rows['train']):,}",
        "train_counts": ", ".join(f"{c} {counts[c]:,}" for c in classes),
        "missing_words": missing_words,
        "family": _family_words(inputs.winner),
        "params": params,
        "others": ", ".join(others) or "no other family",
        "primary_metric": cfg.tracking.primary_metric.replace("test_", "").replace("_", " "),
        "class_weight": cfg.class_weight,
        "calibration": cfg.calibration,
        "beta": f"{beta:.3f}" if beta else None,
        "confidence": f"{cfg.conformal_confidence:.0%}",
        "intervals": [
            f"{k.replace('_', ' ')} {r.estimate:.3f} ({CI_LEVEL:.0%} CI {r.low:.3f} to {r.high:.3f})"
            for k, r in intervals.set_index("metric").iterrows()
        ],
        "auroc_neuropathic": _fmt(m.get("test_auroc_neuropathic")),
        "ece": _fmt(m.get("test_ece")),
        "brier": _fmt(m.get("test_brier")),
        "commit": inputs.tags.get("git.commit", "unknown")[:12],
        "run_id": inputs.run_id,
    }


def _count_words(n: int) -> str:
    return {2: "Two", 3: "Three", 4: "Four", 5: "Five"}.get(n, str(n))
