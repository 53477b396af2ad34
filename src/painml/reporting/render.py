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
from painml.evaluation.clinical import ClinicalEvaluation, clinical_evaluation
from painml.evaluation.decision import ALL_ROWS, MODEL, TREAT_ALL
from painml.evaluation.intervals import BOOTSTRAP_REPS, CI_LEVEL, bootstrap_intervals
from painml.evaluation.metrics import COMPONENT_ABSENT, COMPONENT_PRESENT
from painml.evaluation.stability import CLASS_CHANGE_THRESHOLD
from painml.explain import plots as explain_plots
from painml.explain import shap
from painml.explain.plots import WATERFALL_NOTE
from painml.features.encoding import record_columns, screening_scores
from painml.model.conformal import coverage_by_class, prediction_sets
from painml.record.columns import BY_NAME
from painml.record.vocabulary import block_title, display_name
from painml.reporting.gather import (
    DECISION_THRESHOLDS,
    ReportInputs,
    decision_summary,
    estimated_vs_apparent,
    missingness,
    parse_sample_size_lines,
    resampled,
    sample_size_rows,
)

REPORT_FILE = "report.html"

SECTIONS = {
    "purpose": "What this model is for, and what it is not",
    "key-results": "Key results in plain words",
    "data": "Data",
    "performance": "Performance",
    "calibration": "Calibration",
    "decisions": "Clinical usefulness: decision curves",
    "stability": "Stability of the predictions",
    "subgroups": "Subgroups",
    "explanations": "Global explanations",
    "gallery": "Example patients",
    "model-card": "Model card (TRIPOD+AI)",
    "glossary": "Glossary",
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
    """The whole page as one HTML string.

    Under holdout validation the numbers are on ``rows["test"]``; under resampling (cv) every row was
    predicted out-of-fold and ``inputs.proba`` must hold those predictions: re-predicting with the
    registered model, which was fitted on every row, would be in-sample.
    """
    bundle = inputs.bundle
    classes = bundle.classes
    test = inputs.rows["test"]
    frame_test = inputs.frame.iloc[test]
    y_test = inputs.y[test]
    features = frame_test.loc[:, [c for c in frame_test.columns if c in BY_NAME and BY_NAME[c].kind != "id"]]
    if inputs.proba is not None:
        proba = inputs.proba
    elif resampled(inputs):
        raise ValueError(
            "a resampled run's report needs its out-of-fold probabilities (inputs.proba): the registered model "
            "was fitted on every row, so its own predictions would be in-sample"
        )
    else:
        proba = bundle.predict_proba(features)
    y_index = np.array([classes.index(v) for v in y_test])
    intervals = None if resampled(inputs) else bootstrap_intervals(y_index, proba)
    clinical = inputs.clinical
    if clinical is None:  # a rebuilt report: the same evaluation the run made, from the same probabilities
        seed = inputs.cfg.seed if resampled(inputs) else 0
        clinical = clinical_evaluation(y_test, proba, classes, frame_test, seed=seed)
    how = _validation(inputs)
    header = _header(inputs, how)
    content = {
        "purpose": _purpose(inputs),
        "data": _data(inputs, how),
        "performance": _performance(inputs, how, proba, y_index, intervals),
        "calibration": _calibration(inputs, how, clinical),
        "decisions": _decisions(inputs, how, clinical),
        "stability": _stability(inputs, how),
        "subgroups": _subgroups(inputs, how),
        "explanations": _explanations(inputs, how, features, frame_test, max_rows),
    }
    content["gallery"], example_ids = _gallery(inputs, how, features, frame_test, y_test, proba)
    content["model-card"] = _model_card(inputs, how, intervals, clinical)
    content["key-results"] = _key_results(inputs, how, proba, y_test, content["performance"])
    content["glossary"] = {"terms": [(k, v) for k, v in GLOSSARY.items() if how["resampled"] or k != "out-of-fold"]}
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
    if kind == "1":
        return f"{float(value):.1f}"
    if kind == "2":
        return f"{float(value):.2f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{round(float(value), 3) + 0.0:.3f}"  # + 0.0: no "-0.000"
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


_FAMILY_WORDS = {
    "gbm": "gradient-boosted trees (LightGBM)",
    "logistic": "penalised logistic regression",
    "screening": "logistic regression on the screening questionnaires' totals",
}


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


# --------------------------------------------------------------------------- how performance was estimated


def _validation(inputs: ReportInputs) -> dict[str, Any]:
    """How the numbers of this report were obtained, in the words every section uses: ``which`` names the
    probabilities the figures and tables are drawn from, ``estimate`` the metrics quoted."""
    n = len(inputs.y)
    if not resampled(inputs):
        n_test, n_train = len(inputs.rows["test"]), len(inputs.rows["train"])
        return {
            "resampled": False,
            "method": "holdout",
            "which": "test",
            "estimate": "test",
            "patients": f"{n_test:,} test patients",
            "short": f"a held-out test set of {n_test:,} patients",
            "sentence": f"Performance was measured on a held-out test set of {n_test:,} patients, which neither the "
            f"model nor its calibration saw; the registered model was fitted on {n_train:,} training patients.",
            "n": f"{n:,}",
        }
    v = inputs.cfg.validation
    common = {"resampled": True, "which": "out-of-fold", "patients": f"{n:,} patients, each predicted out-of-fold"}
    if inputs.validation == "bootstrap":
        method = f"Harrell's bootstrap ({v.resamples:,} refits)"
        return common | {
            "method": method,
            "estimate": "optimism-corrected",
            "short": f"optimism-corrected estimates from {method}; figures from out-of-fold predictions of one "
            f"{v.folds}-fold cross-validation; the registered model was fitted on all {n:,} patients",
            "sentence": f"Performance was estimated by {method} of the whole pipeline: each refit was fitted on a "
            "bootstrap sample of the patients, and the average amount by which it flattered itself (the optimism) "
            "was subtracted from the registered model's apparent performance. The figures and the tables computed "
            f"from probabilities use out-of-fold predictions of one {v.folds}-fold cross-validation, in which every "
            f"patient was predicted by a model fitted without them. The registered model was fitted on all {n:,} "
            "patients.",
            "n": f"{n:,}",
        }
    if inputs.validation == "cv":
        method = f"{v.folds}-fold cross-validation x {v.repeats} repeat{'s' if v.repeats != 1 else ''}"
        inside = (
            "the features, early stopping, any tuning, the temperature and the conformal threshold were fitted "
            "again inside each fold"
        )
    else:
        method = f"resampling ({inputs.validation})"
        inside = "every step learned from data was repeated inside each resample"
    return common | {
        "method": method,
        "estimate": "out-of-fold",
        "short": f"out-of-fold predictions from {method}; the registered model was fitted on all {n:,} patients",
        "sentence": f"Performance was estimated from out-of-fold predictions from {method}: every patient was "
        f"predicted by models fitted without them ({inside}). The registered model was fitted on all {n:,} "
        "patients; the out-of-fold numbers estimate how it will do on new patients like these.",
        "n": f"{n:,}",
    }


# --------------------------------------------------------------------------- sections


def _header(inputs: ReportInputs, how: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": inputs.run_id,
        "run_name": inputs.run_name,
        "started": inputs.started,
        "config": inputs.cfg.name,
        "commit": inputs.tags.get("git.commit", "unknown")[:12],
        "dirty": inputs.tags.get("git.dirty") == "True",
        "family": _family_words(inputs.winner),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "validation": how["short"],
    }


def _purpose(inputs: ReportInputs) -> dict[str, Any]:
    return {
        "simulated": inputs.simulated,
        "classes": ", ".join(inputs.bundle.classes),
        "source": _data_source(inputs),
        "confidence": f"{inputs.cfg.conformal_confidence:.0%}",
    }


def _data(inputs: ReportInputs, how: dict[str, Any]) -> dict[str, Any]:
    frame, y, rows = inputs.frame, inputs.y, inputs.rows
    classes = inputs.bundle.classes
    n = len(y)
    if how["resampled"]:
        v = inputs.cfg.validation
        k = v.folds
        learned = (
            "temperature and conformal threshold" if inputs.cfg.calibration == "temperature" else "conformal threshold"
        )
        entries = {
            "all rows": (n, 1.0, f"fitting the registered model, with the {learned} fitted on all out-of-fold scores")
        }
        if inputs.validation == "bootstrap":
            entries["each bootstrap sample"] = (
                n,
                1.0,
                f"drawn with replacement (about 63% of the patients, some several times), {v.resamples:,} times: "
                "each refit's optimism (its score on its sample less its score on all patients)",
            )
        entries["each fold: training part"] = (
            round(n * (k - 1) / k),
            (k - 1) / k,
            f"fitting that fold's model (features, early stopping, any tuning); its {learned} come"
            f"{'s' if learned == 'conformal threshold' else ''} from the other folds' out-of-fold scores",
        )
        entries["each fold: held-out part"] = (
            round(n / k),
            1 / k,
            "out-of-fold predictions: the figures and tables of this report"
            + (
                f" and every performance number (each patient once per repeat, {v.repeats} repeats)"
                if inputs.validation == "cv"
                else " (one cross-validation)"
            ),
        )
        splits = pd.DataFrame(entries, index=["rows", "share", "used for"]).T
        splits["rows"] = splits["rows"].astype(int)
        splits["share"] = splits["share"].astype(float)
        splits.index.name = "rows used"
        shares = pd.DataFrame(
            {
                "rows": pd.Series(y).value_counts().reindex(classes, fill_value=0),
                "share": pd.Series(y).value_counts(normalize=True).reindex(classes, fill_value=0),
            }
        )
        share_kinds = {"rows": "int", "share": "pct"}
    else:
        splits = pd.DataFrame({"rows": {k: len(v) for k, v in rows.items()}})
        splits["share"] = splits["rows"] / len(frame)
        splits.index.name = "split"
        splits["used for"] = pd.Series(
            {
                "train": "fitting the model (early stopping on a slice of it)",
                "calibration": f"{inputs.cfg.calibration} calibration of the probabilities",
                "conformal": "the prediction-set threshold",
                "test": "every performance number in this report",
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
        share_kinds = {"all rows": "int", "all rows share": "pct", "test rows": "int", "test share": "pct"}
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
        "resampled": how["resampled"],
        "method": how["method"],
        "n_patients": f"{len(frame):,}",
        "n_sites": sites.nunique(),
        "seed": inputs.cfg.seed,
        "splits": _table(splits, {"rows": "int", "share": "pct"}, index=True),
        "shares": _table(shares, share_kinds, index=True),
        "sites": _table(site_table, kinds_sites, index=True),
        "missing": _table(
            miss, {"columns": "int", "rows with the whole block missing": "pct", "cells missing": "pct"}, index=True
        ),
        "sample_size": _sample_size(inputs),
    }


def _sample_size(inputs: ReportInputs) -> dict[str, Any]:
    """The sample-size panel (TRIPOD+AI item 10): per family what the cohort can support, and why."""
    found = sample_size_rows(inputs)
    basis = inputs.sample_size_basis or parse_sample_size_lines(inputs.sample_size_lines)[0]
    n = len(inputs.y)
    counts = pd.Series(inputs.y).value_counts().reindex(inputs.bundle.classes, fill_value=0)
    table = pd.DataFrame(
        [
            {
                "family": r.family,
                "candidate parameters per class contrast": r.parameters,
                "patients required": r.n_required,
                "binding criterion": r.binding or "—",
                "parameters the data support": r.parameters_supported,
                "expected shrinkage": r.expected_shrinkage,
                f"enough at {n:,}?": "—" if r.adequate is None else ("yes" if r.adequate else "no"),
            }
            for r in found
        ]
    )
    if len(table):
        table = table.set_index("family")
    winner = next((r for r in found if r.family == inputs.winner), None)
    return {
        "binding_unknown": any(not r.binding for r in found),
        "n": f"{n:,}",
        "counts": ", ".join(f"{c} {counts[c]:,}" for c in counts.index),
        "multinomial": len(inputs.bundle.classes) > 2,
        "basis": basis,
        "table": _table(
            table,
            {
                "candidate parameters per class contrast": "int",
                "patients required": "int",
                "parameters the data support": "1",
                "expected shrinkage": "2",
            },
            index=True,
            row_class=lambda key, _: "winner" if key == inputs.winner else "",
        )
        if len(table)
        else None,
        "verdicts": [{"family": r.family, "verdict": r.verdict} for r in found if r.verdict],
        "winner_verdict": winner.verdict if winner is not None else "",
        "winner_shrinkage": _fmt(winner.expected_shrinkage, "2") if winner is not None else "—",
        "winner_adequate": None if winner is None else winner.adequate,
    }


def _performance(
    inputs: ReportInputs, how: dict[str, Any], proba: np.ndarray, y_index: np.ndarray, intervals: pd.DataFrame | None
) -> dict[str, Any]:
    cmp = inputs.comparison.copy()
    cmp.index.name = "model"
    winner = inputs.winner
    classes = inputs.bundle.classes

    def row_class(key, row) -> str:
        if key == winner:
            return "winner"
        return "ceiling" if "ceiling" in str(key) else ""

    cmp.columns = [c.replace("_", " ") for c in cmp.columns]
    m = inputs.metrics
    if intervals is not None:
        ci = intervals.copy()
        ci["95% interval"] = [f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(ci["low"], ci["high"])]
        ci = ci.set_index("metric")[["estimate", "95% interval"]]
        ci.index = [i.replace("_", " ") for i in ci.index]
        ci.index.name = "metric"
        estimates = _table(ci, index=True)
    else:
        est = estimated_vs_apparent(m, classes)
        shown = pd.DataFrame(
            {
                f"{how['estimate']} estimate": est["estimate"].to_numpy(),
                "95% interval": [_interval(lo, hi) for lo, hi in zip(est["low"], est["high"])],
                "apparent (in-sample)": est["apparent"].to_numpy(),
                "optimism (apparent - estimate)": est["optimism"].to_numpy(),
            },
            index=pd.Index([k.replace("_", " ") for k in est["metric"]], name="metric"),
        )
        if est["plus632"].notna().any():
            shown[".632+ (check)"] = est["plus632"].to_numpy()
        estimates = _table(shown, index=True)
    coverage = m.get(f"{winner}.test_conformal_coverage", m.get("test_conformal_coverage"))
    size = m.get(f"{winner}.test_conformal_set_size", m.get("test_conformal_set_size"))
    y_test = inputs.y[inputs.rows["test"]]
    images = inputs.images
    if "confusion" not in images:
        pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        images["confusion"] = _png(
            evaluation_plots.plot_confusion(
                evaluate.confusion(y_test, pred, classes), f"{winner}: confusion matrix ({how['which']})"
            )
        )
    tools, everyone = _tools(inputs.frame.iloc[inputs.rows["test"]], y_test, proba, classes)
    return {
        "resampled": how["resampled"],
        "cv": inputs.validation == "cv",
        "sentence": how["sentence"],
        "which": how["which"],
        "estimate": how["estimate"],
        "repeats": inputs.cfg.validation.repeats,
        "ceiling": "exact posterior (ceiling)" in inputs.comparison.index,
        "comparison": _table(cmp, row_class=row_class, index=True),
        "comparison_title": f"{evaluate.label_set_name(classes).capitalize()}: {how['estimate']} metrics "
        "(higher is better except log loss, Brier and ECE)",
        "estimates": estimates,
        "family": _family_words(winner),
        "ci_level": f"{CI_LEVEL:.0%}",
        "reps": BOOTSTRAP_REPS,
        "confidence": f"{inputs.cfg.conformal_confidence:.0%}",
        "coverage": _fmt(coverage, "pct"),
        "set_size": _fmt(size),
        "coverage_by_class": _coverage_by_class(inputs, proba, y_index),
        "mondrian": inputs.bundle.metadata.conformal_qhat_by_class is not None,
        "confusion": _b64(images["confusion"]),
        "tools": tools,
        "tools_everyone": everyone,
    }


_TOOL_METRICS = {"sensitivity": "sensitivity", "specificity": "specificity", "balanced_accuracy": "balanced accuracy"}


def _tools(
    frame: pd.DataFrame, y: np.ndarray, proba: np.ndarray, classes: list[str]
) -> tuple[dict[str, Any] | None, str]:
    """Each screening tool with the model scored on exactly the same patients, side by side; and the model on
    every patient asked, in words."""
    long = evaluate.tool_comparison(frame, y, proba, classes)
    if long.empty:
        return None, ""
    first = long.iloc[0]
    everyone = (
        f"On all {int(first['n']):,} patients asked, the model's sensitivity is {first['sensitivity']:.0%} and its "
        f"specificity {first['specificity']:.0%} (balanced accuracy {first['balanced_accuracy']:.3f})."
    )
    rest = long.iloc[1:]
    tools = rest[rest["compared_with"].eq("")].set_index("tool")
    model = rest[rest["compared_with"].ne("")].set_index("compared_with")
    table = pd.DataFrame(index=pd.Index(tools.index, name="tool"))
    table["patients with the tool"] = tools["n"].astype(int)
    table["share of patients asked"] = tools["coverage"].astype(float)
    for key, words in _TOOL_METRICS.items():
        table[f"{words}: tool"] = tools[key].astype(float)
        table[f"{words}: model"] = model.loc[tools.index, key].astype(float).to_numpy()
    table["AUROC: tool"] = tools["auroc"].astype(float)
    table["AUROC: model"] = model.loc[tools.index, "auroc"].astype(float).to_numpy()
    return _table(table, {"patients with the tool": "int", "share of patients asked": "pct"}, index=True), everyone


GLOSSARY = {
    "accuracy": "The share of patients whose most probable class is the clinician's label.",
    "balanced accuracy": "The average, over the classes, of the share of each class's patients recognised: a "
    "rare class counts as much as a common one. For a yes/no question, the average of sensitivity and specificity.",
    "sensitivity": "Of the patients who have the condition, the share the tool or model calls positive.",
    "specificity": "Of the patients who do not have it, the share called negative.",
    "macro F1": "For each class, a balance of how many of its patients are found and how many of those called it "
    "really have it (1 is perfect, 0 is none), averaged over the classes.",
    "AUROC": "The chance that a patient who has the class gets a higher probability of it than one who does not "
    "(0.5 is a coin toss, 1 is perfect ranking).",
    "PDI": "The polytomous discrimination index: the multi-class AUROC, the chance the model picks out a patient of "
    "each class from a set of one patient of every class (1 divided by the number of classes is chance).",
    "log loss": "The average surprise at the clinician's label: low when the model gave the true class a high "
    "probability, very high when it was confident and wrong. Lower is better.",
    "Brier score": "The average squared difference between the probabilities and what happened (1 for the true "
    "class, 0 for the others). Lower is better.",
    "ECE": "Expected calibration error: how far, on average, the stated probabilities are from how often the "
    "class really occurred among patients given that probability. Lower is better.",
    "calibration (intercept, slope, ICI)": "Whether a stated 70% comes true 70% of the time. The intercept says if "
    "probabilities are too high or too low on average (0 is ideal); the slope says if they are too extreme "
    "(below 1) or too timid (above 1); ICI is the average distance from the ideal line.",
    "temperature": "One number, fitted on patients the model did not learn from, that softens or sharpens all the "
    "model's probabilities together so that they match how often the classes occur.",
    "prediction set (conformal)": "The classes the model cannot rule out for a patient. It is built so that it "
    "holds the clinician's label for the stated share of patients (for example 90%); one class means the model is "
    "sure enough, several mean it is not.",
    "coverage": "For prediction sets, the share of patients whose set holds the clinician's label; for a screening "
    "tool, the share of patients on whom it could be scored (its items were recorded).",
    "exact posterior (Bayes ceiling)": "On simulated patients the simulator knows each patient's true "
    "probabilities: the best any model could do with these records. The gap to it is what better modelling could "
    "still gain.",
    "net benefit (decision curve)": "The true positives gained per patient, minus the false positives weighted by "
    "how many false alarms one true case is worth at the chosen threshold.",
    "out-of-fold": "Predictions for a patient made by a model fitted without that patient.",
    "score (softmax logit)": "The number the model computes for each class before turning the scores into "
    "probabilities. The class with the highest score is the most probable one; the difference between two "
    "classes' scores is the logarithm of the ratio of their probabilities.",
    "logit, log-odds": "The logarithm of p / (1 - p): 0 means 50%, +2.2 means 90%, -2.2 means 10%.",
    "SHAP value": "How much one finding moved a class's score for one patient, compared with an average patient. "
    "A patient's values add up exactly to the difference between their score and the average patient's.",
}
"""Terms of the report in plain words, shown in its glossary."""


def _key_results(
    inputs: ReportInputs, how: dict[str, Any], proba: np.ndarray, y: np.ndarray, performance: dict[str, Any]
) -> dict[str, Any]:
    """The main numbers as sentences a clinician can repeat: each class recognised and mistaken for what, the
    prediction sets, and the model beside the best screening tool on that tool's patients."""
    classes = inputs.bundle.classes
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    lines = []
    for c in classes:
        mine = y == c
        if not mine.any():
            continue
        called = pd.Series(predicted[mine]).value_counts()
        right = int(called.get(c, 0))
        line = (
            f"{c.capitalize()} pain is recognised in {right / mine.sum():.0%} of the patients who have it "
            f"({right:,} of {int(mine.sum()):,})"
        )
        wrong = called.drop(c, errors="ignore")
        if len(wrong) and wrong.iloc[0] > 0:
            line += f"; {wrong.iloc[0] / mine.sum():.0%} of them are called {wrong.index[0]}"
        lines.append(line + ".")
        said = predicted == c
        if said.any():
            lines.append(
                f"When the model says {c}, the clinician agrees in {np.mean(y[said] == c):.0%} of patients "
                f"({int(np.sum(y[said] == c)):,} of {int(said.sum()):,})."
            )
    if performance["coverage"] != "—":
        lines.append(
            f"The {performance['confidence']} prediction set holds the clinician's label for {performance['coverage']}"
            f" of patients, with {float(performance['set_size']):.1f} classes on average."
        )
    tools = evaluate.tool_comparison(inputs.frame.iloc[inputs.rows["test"]], y, proba, classes)
    rest = tools.iloc[1:]
    pairs = rest[rest["compared_with"].eq("")].set_index("tool")
    if len(pairs):
        model = rest[rest["compared_with"].ne("")].set_index("compared_with")
        best = pairs["balanced_accuracy"].idxmax()
        lines.append(
            f"On the {int(pairs.loc[best, 'n']):,} patients who had {best.split(' ')[0]} recorded, the best screening "
            f"tool here ({best}) finds {pairs.loc[best, 'sensitivity']:.0%} of those with a neuropathic component "
            f"and clears {pairs.loc[best, 'specificity']:.0%} of those without; on the same patients the model finds "
            f"{model.loc[best, 'sensitivity']:.0%} and clears {model.loc[best, 'specificity']:.0%}."
        )
    return {"simulated": inputs.simulated, "patients": how["patients"], "lines": lines}


def _interval(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "—"
    return f"{low:.3f} to {high:.3f}"


def _coverage_by_class(inputs: ReportInputs, proba: np.ndarray, y_index: np.ndarray) -> dict[str, Any] | None:
    """Share of each class's patients whose prediction set holds their class: logged by a resampled run,
    computed from the test probabilities and the bundle's thresholds under holdout."""
    classes = inputs.bundle.classes
    m = inputs.metrics
    logged = {c: m.get(f"test_conformal_coverage_{c}") for c in classes}
    if all(v is not None for v in logged.values()):
        by_class = logged
    elif inputs.bundle.metadata.thresholds is not None:
        sets = prediction_sets(proba, inputs.bundle.metadata.thresholds)
        by_class = coverage_by_class(sets, y_index, classes)
    else:
        return None
    counts = np.bincount(y_index, minlength=len(classes))
    table = pd.DataFrame(
        {"patients": counts, "coverage": [by_class[c] for c in classes]}, index=pd.Index(classes, name="class")
    )
    return _table(table, {"patients": "int", "coverage": "pct"}, index=True)


def _calibration(inputs: ReportInputs, how: dict[str, Any], clinical: ClinicalEvaluation) -> dict[str, Any]:
    """Van Calster's weak calibration (intercept, slope) per class with intervals, the loess curves with ICI,
    and what the numbers mean in words."""
    table = clinical.calibration
    curves = clinical.curves
    shown = pd.DataFrame(
        {
            "patients with the class": [f"{int(e):,} of {int(n):,}" for e, n in zip(table["events"], table["n"])],
            "intercept": table["intercept"].to_numpy(dtype=float),
            "intercept 95% CI": [_interval(lo, hi) for lo, hi in zip(table["intercept_low"], table["intercept_high"])],
            "slope": table["slope"].to_numpy(dtype=float),
            "slope 95% CI": [_interval(lo, hi) for lo, hi in zip(table["slope_low"], table["slope_high"])],
            "ICI": [curves[c].ici if c in curves else np.nan for c in table["class"]],
        },
        index=pd.Index(table["class"], name="class"),
    )
    notes = [f"{r['class']}: {r['reason']}" for r in table.to_dict("records") if r.get("reason")]
    findings = []
    wide = False
    for r in table.to_dict("records"):
        c, lo, hi = r["class"], r["slope_low"], r["slope_high"]
        if np.isfinite(hi) and hi < 1:
            findings.append(
                f"{c}: slope {r['slope']:.2f} ({lo:.2f} to {hi:.2f}), below 1: its predicted probabilities are "
                "too extreme (high ones too high, low ones too low)"
            )
        elif np.isfinite(lo) and lo > 1:
            findings.append(
                f"{c}: slope {r['slope']:.2f} ({lo:.2f} to {hi:.2f}), above 1: its predicted probabilities are "
                "too timid (too close to the average)"
            )
        if np.isfinite(r["intercept_low"]) and r["intercept_low"] > 0:
            findings.append(f"{c}: intercept above 0: its probabilities are too low on average")
        elif np.isfinite(r["intercept_high"]) and r["intercept_high"] < 0:
            findings.append(f"{c}: intercept below 0: its probabilities are too high on average")
        wide = wide or (np.isfinite(hi) and np.isfinite(lo) and hi - lo > 0.5)
    image = None
    if curves:
        image = _b64(
            _png(
                evaluation_plots.plot_flexible_calibration(
                    curves, f"{inputs.winner}: calibration, each class against the rest ({how['which']})"
                )
            )
        )
    m = inputs.metrics
    beta = inputs.bundle.temperature_factor
    return {
        "resampled": how["resampled"],
        "which": how["which"],
        "patients": how["patients"],
        "table": _table(shown, {"slope": "2", "intercept": "2"}, index=True),
        "two_classes": len(inputs.bundle.classes) == 2,
        "notes": notes,
        "findings": findings,
        "wide": wide,
        "curves": image,
        "calibration": inputs.cfg.calibration,
        "beta": f"{beta:.3f}" if beta else None,
        "ece": _fmt(m.get("test_ece")),
        "brier": _fmt(m.get("test_brier")),
    }


def _decisions(inputs: ReportInputs, how: dict[str, Any], clinical: ClinicalEvaluation) -> dict[str, Any]:
    """Decision curves of "is there a neuropathic component?" and the net benefit at a few thresholds."""
    classes = inputs.bundle.classes
    present = [c for c in COMPONENT_PRESENT if c in classes]
    absent = [c for c in COMPONENT_ABSENT if c in classes]
    decision = clinical.decision
    base = {
        "which": how["which"],
        "present": " or ".join(present),
        "absent": " or ".join(absent),
        "others": ", ".join(c for c in classes if c not in present + absent),
    }
    if decision is None:
        return base | {"available": False}
    summary = decision_summary(decision)
    percent = [round(t * 100) for t in DECISION_THRESHOLDS]
    rows = []
    for subset, block in summary.groupby("rows", sort=False):
        first = block.iloc[0]
        where = "all patients asked" if subset == ALL_ROWS else f"where {subset} was scored"
        label = f"{where} (n={int(first['n']):,}, {first['prevalence']:.0%} with a component)"
        for i, (_, r) in enumerate(block.iterrows()):
            strategy = {MODEL: f"model ({inputs.winner})", TREAT_ALL: "treat all"}.get(r["strategy"], r["strategy"])
            row = {"patients": label if i == 0 else "", "strategy": strategy}
            row |= {f"benefit at {p}%": r[f"nb_{p}"] for p in percent}
            row |= {f"avoided per 100 at {p}%": r[f"avoided_{p}"] for p in percent}
            rows.append(row)
    table = pd.DataFrame(rows)
    kinds = {f"avoided per 100 at {p}%": "1" for p in percent}
    fig = evaluation_plots.plot_decision_curve(
        decision, f"{inputs.winner}: is there a neuropathic component? Net benefit ({how['which']})"
    )
    image = _b64(_png(fig))
    n_all = int(decision.loc[decision["rows"] == ALL_ROWS, "n"].iloc[0])
    return base | {
        "available": True,
        "figure": image,
        "table": _table(table, kinds, row_class=lambda _, r: "winner" if r["strategy"].startswith("model") else ""),
        "n": f"{n_all:,}",
        "thresholds": ", ".join(f"{p}%" for p in percent),
        "low": f"{decision['threshold'].min():.0%}",
        "high": f"{decision['threshold'].max():.0%}",
    }


def _stability(inputs: ReportInputs, how: dict[str, Any]) -> dict[str, Any]:
    """Riley & Collins' prediction instability of a resampled run: the refits' probabilities against the
    registered model's (the figure the run logged, when the report has it) and the summary numbers."""
    if not how["resampled"]:
        return {"available": False, "resampled": False}
    s, m = inputs.stability, inputs.metrics
    mape = s.mape if s is not None else m.get("stability_mape")
    share = s.share_unstable if s is not None else m.get("stability_unstable_share")
    if mape is None or share is None:
        return {"available": False, "resampled": True}
    v = inputs.cfg.validation
    refits = (
        s.n_refits if s is not None else {"cv": v.folds * v.repeats, "bootstrap": v.resamples}.get(inputs.validation)
    )
    by_class = None
    if s is not None:
        frame = pd.DataFrame(
            {"MAPE": [s.mape_by_class[c] for c in s.classes]}, index=pd.Index(list(s.classes), name="class")
        )
        by_class = _table(frame, index=True)
    image = inputs.images.get("instability")
    return {
        "available": True,
        "resampled": True,
        "cv": inputs.validation == "cv",
        "bootstrap": inputs.validation == "bootstrap",
        "folds": v.folds,
        "refits": f"{refits:,}" if refits else "the",
        "mape": f"{mape:.3f}",
        "points": f"{mape * 100:.1f}",
        "share": f"{share:.1%}",
        "threshold": f"{(s.threshold if s is not None else CLASS_CHANGE_THRESHOLD):.0%}",
        "by_class": by_class,
        "figure": _b64(image) if image else None,
    }


def _subgroups(inputs: ReportInputs, how: dict[str, Any]) -> dict[str, Any]:
    table = inputs.subgroups
    if table.empty:
        return {"table": None, "which": how["which"]}
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
    sites = None
    if inputs.sites is not None and not inputs.sites.empty:
        per_site = inputs.sites.copy()
        per_site.columns = [c.replace("_", " ") for c in per_site.columns]
        sites = _table(per_site, {"n": "int"})
    return {
        "which": how["which"],
        "f1_drop": f"{evaluate.WORSE_F1_DROP:.2f}",
        "loss_ratio": f"{evaluate.WORSE_LOG_LOSS_RATIO - 1:.0%}",
        "flagged": [f"{g} = {v}" for g, v in zip(flagged["group"], flagged["level"])],
        "table": _table(shown.reset_index(drop=True), {"n": "int"}, row_class=row_class),
        "sites": sites,
    }


def _explanations(
    inputs: ReportInputs, how: dict[str, Any], features: pd.DataFrame, frame: pd.DataFrame, max_rows: int
) -> dict[str, Any]:
    """Reuses the SHAP figures the run logged when there are any; otherwise explains a sample of the rows."""
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
        "resampled": how["resampled"],
        "n_rows": f"{n_rows:,}",
        "classes": per_class,
        "beeswarm_note": explain_plots.BEESWARM_NOTE,
        "comparison": _b64(comparison) if comparison else None,
        "dependence": [_b64(images[name]) for name in dependence if name in images],
    }


def gallery_examples(inputs: ReportInputs, proba: np.ndarray) -> list[shap.Example]:
    """The example patients, chosen by rule on the report's probabilities (test or out-of-fold) and labels;
    training passes the same ones to the ``shap/`` waterfalls, so "example patient N" is one patient in both."""
    return shap.pick_examples(proba, inputs.bundle.classes, inputs.y[inputs.rows["test"]])


def _gallery(
    inputs: ReportInputs,
    how: dict[str, Any],
    features: pd.DataFrame,
    frame: pd.DataFrame,
    y_test: np.ndarray,
    proba: np.ndarray,
) -> tuple[dict[str, Any], list[str]]:
    """The example cards, and the chosen patients' identifiers so :func:`render` can check none leaked.

    Patients are chosen on ``proba`` (test or out-of-fold). The reasons always explain the registered
    model; under resampling it was fitted on these patients too, so its own probabilities are shown beside
    the out-of-fold ones."""
    classes = inputs.bundle.classes
    examples = gallery_examples(inputs, proba)
    ids = [str(v) for v in frame["patient_id"].iloc[[e.position for e in examples]]] if "patient_id" in frame else []
    if not examples:
        return {
            "cards": [],
            "resampled": how["resampled"],
            "which": how["which"],
            "waterfall_note": WATERFALL_NOTE,
        }, ids
    positions = [e.position for e in examples]
    chosen = shap.explain(inputs.bundle, features.iloc[positions], frame.iloc[positions])
    final = inputs.bundle.predict_proba(features.iloc[positions]) if how["resampled"] else proba[positions]
    qhat = inputs.bundle.metadata.thresholds
    sets = prediction_sets(proba[positions], qhat) if qhat is not None else None
    cards = []
    for n, ex in enumerate(examples, start=1):
        i, k = n - 1, ex.class_index
        predicted, truth = classes[k], str(y_test[ex.position])
        p = float(final[i, k])
        fig = explain_plots.plot_waterfall(
            chosen, i, k, title=explain_plots.example_title(n, predicted, p), subtitle=ex.caption
        )
        bars = shap.waterfall(chosen, i, k).shown[:4]
        members = [c for c, keep in zip(classes, sets[i]) if keep] if sets is not None else None
        what_if = shap.what_if_recorded(inputs.bundle, frame.iloc[[ex.position]])
        cards.append(
            {
                "n": n,
                "caption": ex.caption,
                "predicted": predicted,
                "truth": truth,
                "correct": truth == predicted,
                "probabilities": ", ".join(f"{c} {proba[ex.position, j]:.0%}" for j, c in enumerate(classes)),
                "registered": ", ".join(f"{c} {final[i, j]:.0%}" for j, c in enumerate(classes)),
                "prediction_set": " or ".join(members) if members is not None else None,
                "reasons": [b.sentence(predicted) for b in bars if not b.missing],
                "absences": [b.sentence(predicted) for b in bars if b.missing],
                "what_if": [w.sentence() for w in what_if],
                "waterfall": _b64(_png(fig)),
            }
        )
    return {"cards": cards, "resampled": how["resampled"], "which": how["which"], "waterfall_note": WATERFALL_NOTE}, ids


def _model_card(
    inputs: ReportInputs, how: dict[str, Any], intervals: pd.DataFrame | None, clinical: ClinicalEvaluation
) -> dict[str, Any]:
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
    if intervals is not None:
        performance = [
            f"{k.replace('_', ' ')} {r.estimate:.3f} ({CI_LEVEL:.0%} CI {r.low:.3f} to {r.high:.3f})"
            for k, r in intervals.set_index("metric").iterrows()
        ]
    else:
        est = estimated_vs_apparent(m, classes)
        performance = [
            f"{r.metric.replace('_', ' ')} {r.estimate:.3f}"
            + (f" ({CI_LEVEL:.0%} CI {r.low:.3f} to {r.high:.3f})" if np.isfinite(r.low) else "")
            + (f", apparent {r.apparent:.3f}" if np.isfinite(r.apparent) else "")
            for r in est.itertuples()
            if not r.metric.startswith("auroc_") and r.metric != "pdi"  # both follow in their own words
        ]
    auroc = [
        f"{c} {m[f'test_auroc_{c}']:.3f}"
        + (
            f" ({m[f'test_auroc_{c}_ci_low']:.3f} to {m[f'test_auroc_{c}_ci_high']:.3f})"
            if f"test_auroc_{c}_ci_low" in m
            else ""
        )
        for c in classes
        if f"test_auroc_{c}" in m
    ]
    table = clinical.calibration
    slopes = [
        f"{r['class']} {r['slope']:.2f}"
        + (f" ({r['slope_low']:.2f} to {r['slope_high']:.2f})" if np.isfinite(r["slope_low"]) else "")
        for r in table.to_dict("records")
        if np.isfinite(r["slope"])
    ]
    if len(classes) == 2:
        slopes = slopes[-1:]
    size = _sample_size(inputs)
    v = cfg.validation
    decision = clinical.decision
    return {
        "resampled": how["resampled"],
        "cv": inputs.validation == "cv",
        "method": how["method"],
        "which": how["which"],
        "estimate": how["estimate"],
        "folds": v.folds,
        "repeats": v.repeats,
        "source": _data_source(inputs),
        "simulated": inputs.simulated,
        "n_sites": inputs.frame["site"].nunique(),
        "classes": ", ".join(classes),
        "n_columns": len(record_columns(groups)),
        "blocks": ", ".join(block_title(g).name for g in groups if g != "screening"),
        "scores": ", ".join(screening_scores(groups)),
        "n_patients": f"{len(inputs.frame):,}",
        "n_train": f"{len(inputs.rows['train']):,}",
        "n_test": f"{len(inputs.rows['test']):,}",
        "train_counts": ", ".join(f"{c} {counts[c]:,}" for c in classes),
        "sample_size": size,
        "missing_words": missing_words,
        "family": _family_words(inputs.winner),
        "params": params,
        "others": ", ".join(others) or "no other family",
        "winner_reason": re.sub(
            r"\b(?:test|apparent)_(\w+)",
            lambda k: k.group(1).replace("_", " "),
            inputs.tags.get("painml.winner_reason", ""),
        ),
        "primary_metric": cfg.tracking.primary_metric.replace("test_", "").replace("_", " "),
        "class_weight": cfg.class_weight,
        "calibration": cfg.calibration,
        "beta": f"{beta:.3f}" if beta else None,
        "confidence": f"{cfg.conformal_confidence:.0%}",
        "performance": performance,
        "auroc": auroc,
        "pdi": _fmt(m.get("test_pdi")) if "test_pdi" in m else None,
        "slopes": slopes,
        "ici": ", ".join(f"{c} {curve.ici:.3f}" for c, curve in clinical.curves.items()),
        "decision": decision is not None,
        "brier": _fmt(m.get("test_brier")),
        "stability": _fmt(m.get("stability_mape")) if "stability_mape" in m else None,
        "unstable": _fmt(m.get("stability_unstable_share"), "pct") if "stability_unstable_share" in m else None,
        "commit": inputs.tags.get("git.commit", "unknown")[:12],
        "run_id": inputs.run_id,
    }
