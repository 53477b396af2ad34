"""Evaluation: metrics, subgroups, screening-tool baselines, the Bayes ceiling, plots.

Pure functions on arrays and frames, no tracking, so the same numbers come out
of training, the CLI and the tests. A model is only worth deploying if it
beats the screening tools clinicians already use (:func:`baseline_metrics`),
does not fail a subgroup (:func:`subgroup_metrics`), and its distance to the
best any classifier can do on simulated data is known (:func:`oracle_metrics`,
:func:`ceiling_gap`).

Conventions: ``classes`` is the ordered label tuple, ``proba`` has one column
per class in that order, and ``y_true``/``proba`` are aligned with ``frame``
by position. Labels outside ``classes`` are an error, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, log_loss, roc_auc_score

from painml.features import screening
from painml.record.columns import BLOCKS

__all__ = [
    "AGE_BANDS",
    "ECE_BINS",
    "QUESTIONNAIRES",
    "SUBGROUPS",
    "age_band",
    "baseline_metrics",
    "ceiling_gap",
    "classification_metrics",
    "confusion",
    "label_set_name",
    "oracle_metrics",
    "questionnaire_used",
    "subgroup_metrics",
    "tool_comparison",
]

ECE_BINS = 15
CALIBRATION_BINS = 10
UNKNOWN = "unknown"
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("18-39", 18, 40),
    ("40-59", 40, 60),
    ("60-74", 60, 75),
    ("75+", 75, np.inf),
)
"""(label, lower bound inclusive, upper bound exclusive)."""
QUESTIONNAIRES = ("dn4", "paindetect", "both", "none")
SUBGROUPS = ("sex", "age_band", "site", "questionnaire")
WORSE_F1_DROP = 0.10
WORSE_LOG_LOSS_RATIO = 1.25
COMPONENT_PRESENT = ("neuropathic", "mixed")
COMPONENT_ABSENT = ("nociceptive",)
BAND_CLASSES = ("nociceptive", "mixed", "neuropathic")
"""painDETECT band index (negative, unclear, positive) -> predicted class."""
TRUE_P_PREFIX = "true_p_"


def _labels(y: object, classes: Sequence[str], what: str = "y_true") -> np.ndarray:
    """Labels as an object array; anything outside ``classes`` (including NaN) is an error."""
    arr = np.asarray(y, dtype=object).ravel()
    bad = ~pd.Series(arr).isin(list(classes)).to_numpy()
    if bad.any():
        found = sorted({str(v) for v in arr[bad]})
        raise ValueError(f"{what} holds labels outside classes {list(classes)}: {found[:5]}")
    return arr


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    out = tuple(classes)
    if isinstance(classes, str) or len(out) < 2 or len(set(out)) != len(out):
        raise ValueError(f"classes must be at least 2 distinct labels, got {classes!r}")
    return out


def _proba(proba: object, classes: tuple[str, ...], n: int) -> np.ndarray:
    """Probabilities as (n, K) float; a frame whose columns are the classes is put in class order."""
    if isinstance(proba, pd.DataFrame) and set(proba.columns) == set(classes):
        proba = proba.loc[:, list(classes)]
    p = np.asarray(proba, dtype=np.float64)
    if p.shape != (n, len(classes)):
        raise ValueError(f"proba must have shape ({n}, {len(classes)}), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("proba holds NaN or infinite values")
    return p


def _macro_f1(y: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> float:
    """Macro F1 over classes seen in truth or prediction: an absent, never-predicted class has no F1."""
    seen = set(y) | set(pred)
    labels = [c for c in classes if c in seen]
    return float(f1_score(y, pred, labels=labels, average="macro", zero_division=0.0))


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> float:
    """Mean recall over the classes present in ``y`` (sklearn's definition, without its warning)."""
    recalls = [np.mean(pred[y == c] == c) for c in classes if np.any(y == c)]
    return float(np.mean(recalls)) if recalls else np.nan


def _ece(correct: np.ndarray, confidence: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: bins (i/M, (i+1)/M], |accuracy - mean confidence| weighted by bin share."""
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        total += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total / len(confidence))


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, NaN when only one outcome is present (undefined, not an error)."""
    if positive.all() or not positive.any():
        return np.nan
    return float(roc_auc_score(positive, score))


def classification_metrics(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    prefix: str = "test_",
) -> dict[str, float]:
    """Discrimination and calibration of a probabilistic classifier in one flat dict.

    Keys (each with ``prefix``): macro_f1, balanced_accuracy, accuracy,
    log_loss, brier (multiclass: sum over classes, 0..2), ece (top-label,
    15 bins) and auroc_<class> one-vs-rest (NaN when the class is absent or
    the only one present). The prediction is the argmax of ``proba``.
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    p = _proba(proba, classes, len(y))
    class_arr = np.array(classes, dtype=object)
    pred = class_arr[p.argmax(axis=1)]
    onehot = (y[:, None] == class_arr[None, :]).astype(np.float64)
    # sklearn reads proba columns in sorted label order whatever ``labels`` says
    order = np.argsort(class_arr.astype(str), kind="stable")
    out = {
        "macro_f1": _macro_f1(y, pred, classes),
        "balanced_accuracy": _balanced_accuracy(y, pred, classes),
        "accuracy": float(np.mean(pred == y)),
        "log_loss": float(log_loss(y, p[:, order], labels=list(class_arr[order]))),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        "ece": _ece(pred == y, p.max(axis=1)),
    }
    for k, c in enumerate(classes):
        out[f"auroc_{c}"] = auroc(y == c, p[:, k])
    return {f"{prefix}{key}": value for key, value in out.items()}


def confusion(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    y_pred: Sequence[str] | np.ndarray | pd.Series,
    classes: Sequence[str],
) -> pd.DataFrame:
    """Counts with rows = true label, columns = predicted label, both in ``classes`` order."""
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    pred = _labels(y_pred, classes, "y_pred")
    cm = confusion_matrix(y, pred, labels=list(classes))
    return pd.DataFrame(
        cm,
        index=pd.Index(classes, name="true label"),
        columns=pd.Index(classes, name="predicted label"),
    )


def _recorded(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Row has at least one of ``names`` recorded; an absent column records nothing."""
    present = [n for n in names if n in frame.columns]
    if not present:
        return np.zeros(len(frame), dtype=bool)
    return frame[present].notna().any(axis=1).to_numpy()


def questionnaire_used(frame: pd.DataFrame) -> pd.Series:
    """Which neuropathic questionnaire the row's site filled in: the main subgroup by data source.

    DN4 when any DN4 interview item is recorded (the examination items are not
    a questionnaire), painDETECT when any ``pd_*`` item is.
    """
    dn4 = _recorded(frame, BLOCKS["dn4_interview"])
    pd_ = _recorded(frame, BLOCKS["paindetect"])
    used = np.select([dn4 & pd_, dn4, pd_], ["both", "dn4", "paindetect"], default="none").astype(object)
    return pd.Series(used, index=frame.index, name="questionnaire", dtype=object)


def age_band(frame: pd.DataFrame) -> pd.Series:
    """Age in the bands of :data:`AGE_BANDS`; missing or below 18 (not an adult record) is "unknown"."""
    if "age" in frame.columns:
        age = pd.to_numeric(frame["age"], errors="coerce").astype("float64").to_numpy()
    else:
        age = np.full(len(frame), np.nan)
    band = np.full(len(frame), UNKNOWN, dtype=object)
    for label, low, high in AGE_BANDS:
        band[(age >= low) & (age < high)] = label
    return pd.Series(band, index=frame.index, name="age_band", dtype=object)


def _text_levels(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(UNKNOWN, index=frame.index, name=column, dtype=object)
    values = frame[column].astype(object)
    return values.where(values.notna(), UNKNOWN).map(str).astype(object).rename(column)


def _level_order(group: str, levels: pd.Series) -> list[str]:
    """Fixed orders for known levels, sites alphabetically, "unknown" last."""
    known = {
        "sex": ("female", "male"),
        "age_band": tuple(b[0] for b in AGE_BANDS),
        "questionnaire": QUESTIONNAIRES,
    }.get(group)
    present = set(levels.unique())
    ordered = [lv for lv in known if lv in present] if known else sorted(present - {UNKNOWN})
    rest = sorted(present - set(ordered) - {UNKNOWN})
    return ordered + rest + ([UNKNOWN] if UNKNOWN in present else [])


def subgroup_metrics(
    frame: pd.DataFrame,
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    min_rows: int = 30,
) -> pd.DataFrame:
    """Metrics per sex, age band, site and questionnaire, flagging groups the model fails.

    One row per (group, level), preceded by an ("overall", "all") row that the
    flags are relative to. ``flag`` is "markedly worse" when macro F1 is more
    than 0.10 below overall or log loss more than 25% above it (only with
    ``n >= min_rows``: small groups are noisy), "too few rows" when
    ``n < min_rows``, else "". Only aggregates leave this function: site names
    appear, patient ids never do.
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    p = _proba(proba, classes, len(y))
    if len(frame) != len(y):
        raise ValueError(f"frame has {len(frame)} rows but y_true has {len(y)}")
    keys = ["macro_f1", "balanced_accuracy", "accuracy", "log_loss", "ece", *(f"auroc_{c}" for c in classes)]

    def row(group: str, level: str, mask: np.ndarray) -> dict[str, object]:
        m = classification_metrics(y[mask], p[mask], classes, prefix="")
        return {"group": group, "level": level, "n": int(mask.sum()), **{k: m[k] for k in keys}}

    overall = row("overall", "all", np.ones(len(y), dtype=bool))
    rows = [overall]
    groupings = {
        "sex": _text_levels(frame, "sex"),
        "age_band": age_band(frame),
        "site": _text_levels(frame, "site"),
        "questionnaire": questionnaire_used(frame),
    }
    for group, levels in groupings.items():
        values = levels.to_numpy()
        for level in _level_order(group, levels):
            rows.append(row(group, level, values == level))
    out = pd.DataFrame(rows, columns=["group", "level", "n", *keys])
    worse = (out["macro_f1"] < overall["macro_f1"] - WORSE_F1_DROP) | (
        out["log_loss"] > WORSE_LOG_LOSS_RATIO * overall["log_loss"]
    )
    too_few = out["n"] < min_rows
    out["flag"] = np.select([too_few, worse], ["too few rows", "markedly worse"], default="").astype(object)
    return out


def _binary_baselines() -> list[tuple[str, str, float]]:
    """(name, score column, positive cut-off) for the yes/no screening rules."""
    probable = float(screening.NEUPSIG_GRADES.index("probable"))
    return [
        (f"DN4 >= {screening.DN4_POSITIVE}", "dn4", screening.DN4_POSITIVE),
        (f"DN4-interview >= {screening.DN4_INTERVIEW_POSITIVE}", "dn4_interview", screening.DN4_INTERVIEW_POSITIVE),
        (f"painDETECT >= {screening.PAINDETECT_POSITIVE}", "paindetect", screening.PAINDETECT_POSITIVE),
        (f"LANSS >= {screening.LANSS_POSITIVE}", "lanss", screening.LANSS_POSITIVE),
        (f"ID-Pain >= {screening.ID_PAIN_POSITIVE}", "id_pain", screening.ID_PAIN_POSITIVE),
        ("NeuPSIG >= probable", "neupsig_grade", probable),
    ]


def baseline_metrics(
    frame: pd.DataFrame,
    y_true: Sequence[str] | np.ndarray | pd.Series,
    classes: Sequence[str],
) -> pd.DataFrame:
    """The published screening rules scored on the model's rows: the bar a model must clear.

    Yes/no tools answer "is a neuropathic component present?" (neuropathic or
    mixed vs nociceptive); rows labelled with any other class cannot be scored
    against that question and are left out (``n`` counts the rows asked).
    "painDETECT bands" is the 3-class rule (<= 12 nociceptive, 13-18 mixed,
    >= 19 neuropathic), present only when the label set is exactly those three classes: on any other label
    set it would be scored as a rule that cannot name the other classes. A rule is scored where its score
    exists (``n_scored``, ``coverage`` = n_scored / n): a site that does not
    record a tool has no baseline there, it is not a negative screen.
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    if len(frame) != len(y):
        raise ValueError(f"frame has {len(frame)} rows but y_true has {len(y)}")
    scores = screening.compute_scores(frame)
    columns_out = [
        "baseline", "question", "n", "n_scored", "coverage", "sensitivity", "specificity",
        "balanced_accuracy", "auroc", "macro_f1", "accuracy",
    ]  # fmt: skip
    positive_labels = [c for c in COMPONENT_PRESENT if c in classes]
    negative_labels = [c for c in COMPONENT_ABSENT if c in classes]
    asked = np.isin(y, positive_labels + negative_labels)
    component = np.isin(y, positive_labels)
    answerable = bool(positive_labels and negative_labels)
    rows = []
    for name, column, cutoff in _binary_baselines():
        score = scores[column].to_numpy(dtype=np.float64)
        scored = asked & ~np.isnan(score)
        n_asked = int(asked.sum())
        measured = _yes_no(component[scored], score[scored], cutoff) if answerable else {}
        rows.append({
            "baseline": name,
            "question": "neuropathic component",
            "n": n_asked,
            "n_scored": int(scored.sum()),
            "coverage": scored.sum() / n_asked if n_asked else np.nan,
            "sensitivity": measured.get("sensitivity", np.nan),
            "specificity": measured.get("specificity", np.nan),
            "balanced_accuracy": measured.get("balanced_accuracy", np.nan),
            "auroc": measured.get("auroc", np.nan),
            "macro_f1": np.nan,
            "accuracy": np.nan,
        })  # fmt: skip
    if set(BAND_CLASSES) == set(classes):
        band = scores["paindetect_band"].to_numpy(dtype=np.float64)
        in_rule = np.isin(y, BAND_CLASSES)
        scored = in_rule & ~np.isnan(band)
        truth = y[scored]
        pred = np.array(BAND_CLASSES, dtype=object)[band[scored].astype(np.int64)]
        any_scored = bool(scored.any())
        rows.append({
            "baseline": "painDETECT bands",
            "question": "3 classes",
            "n": int(in_rule.sum()),
            "n_scored": int(scored.sum()),
            "coverage": scored.sum() / in_rule.sum() if in_rule.any() else np.nan,
            "sensitivity": np.nan,
            "specificity": np.nan,
            "balanced_accuracy": _balanced_accuracy(truth, pred, BAND_CLASSES) if any_scored else np.nan,
            "auroc": np.nan,
            "macro_f1": _macro_f1(truth, pred, BAND_CLASSES) if any_scored else np.nan,
            "accuracy": float(np.mean(truth == pred)) if any_scored else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=columns_out)


_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def label_set_name(classes: Sequence[str]) -> str:
    """The label set in words, for titles: "three classes (nociceptive, neuropathic, mixed)"."""
    n = len(classes)
    count = _COUNT_WORDS[n] if n < len(_COUNT_WORDS) else str(n)
    return f"{count} classes ({', '.join(classes)})"


MODEL_ON_TOOL_ROWS = "model, on the same rows"
"""The ``tool`` of the model's row beside each screening tool in :func:`tool_comparison`."""


def _yes_no(truth: np.ndarray, score: np.ndarray, cutoff: float) -> dict[str, float]:
    """Sensitivity, specificity, balanced accuracy and AUROC of "positive when score >= cutoff"."""
    positive = score >= cutoff
    sens = float(positive[truth].mean()) if truth.any() else np.nan
    spec = float((~positive[~truth]).mean()) if (~truth).any() else np.nan
    return {
        "sensitivity": sens,
        "specificity": spec,
        "balanced_accuracy": (sens + spec) / 2,
        "auroc": auroc(truth, score),
    }


def tool_comparison(
    frame: pd.DataFrame,
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray,
    classes: Sequence[str],
) -> pd.DataFrame:
    """The yes/no screening tools and the model, like for like: "is a neuropathic component present?".

    The model answers with P(neuropathic or mixed) >= 0.5. Its first row covers every patient asked (labelled
    with a class the question concerns); then each tool is followed by the model scored on exactly that tool's
    rows (where the tool's score exists), so the two numbers beside each other describe the same patients. A
    tool no row has is left out. Columns: ``tool``, ``compared_with`` (the tool a model row is paired with, ""
    for the first), ``n`` (rows scored), ``coverage`` (share of the patients asked), and the four metrics.
    Empty when the label set cannot answer the question (no class with, or none without, a component).
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    columns = ["tool", "compared_with", "n", "coverage", "sensitivity", "specificity", "balanced_accuracy", "auroc"]
    present = [c for c in COMPONENT_PRESENT if c in classes]
    absent = [c for c in COMPONENT_ABSENT if c in classes]
    if not present or not absent:
        return pd.DataFrame(columns=columns)
    asked = np.isin(y, present + absent)
    truth = np.isin(y, present)
    model = np.asarray(proba, dtype=np.float64)[:, [classes.index(c) for c in present]].sum(axis=1)
    n_asked = int(asked.sum())
    scores = screening.compute_scores(frame)

    def row(tool: str, paired: str, rows: np.ndarray, score: np.ndarray, cutoff: float) -> dict[str, object]:
        return {
            "tool": tool,
            "compared_with": paired,
            "n": int(rows.sum()),
            "coverage": rows.sum() / n_asked if n_asked else np.nan,
            **_yes_no(truth[rows], score[rows], cutoff),
        }

    out = [row(f"model, every patient asked (P({' or '.join(present)}) >= 0.5)", "", asked, model, 0.5)]
    for name, column, cutoff in _binary_baselines():
        score = scores[column].to_numpy(dtype=np.float64)
        rows = asked & ~np.isnan(score)
        if not rows.any():
            continue
        out.append(row(name, "", rows, score, cutoff))
        out.append(row(MODEL_ON_TOOL_ROWS, name, rows, model, 0.5))
    return pd.DataFrame(out, columns=columns)


def oracle_metrics(
    truth: pd.DataFrame | None,
    y_true: Sequence[str] | np.ndarray | pd.Series,
    classes: Sequence[str],
    prefix: str = "oracle_",
) -> dict[str, float]:
    """Metrics of the exact posterior (simulated data only): the ceiling no model can beat.

    ``truth`` must hold ``true_p_<class>`` for exactly the classes in
    ``classes`` (a posterior over another label set is not this task's
    ceiling) with no missing values; otherwise, and for real data
    (``truth=None``), the result is ``{}``.
    """
    classes = _check_classes(classes)
    if truth is None:
        return {}
    wanted = [f"{TRUE_P_PREFIX}{c}" for c in classes]
    have = {c for c in truth.columns if isinstance(c, str) and c.startswith(TRUE_P_PREFIX)}
    if have != set(wanted):
        return {}
    p = truth[wanted].apply(pd.to_numeric, errors="coerce").astype("float64").to_numpy()
    if np.isnan(p).any():
        return {}
    return classification_metrics(y_true, p, classes, prefix=prefix)


def ceiling_gap(
    model_metrics: dict[str, float],
    oracle: dict[str, float],
    prefix_model: str = "test_",
    prefix_oracle: str = "oracle_",
) -> dict[str, float]:
    """How far the model is from the Bayes ceiling; ``{}`` without an oracle.

    ``gap_log_loss`` is relative (0.10 = 10% more loss than the ceiling),
    ``gap_macro_f1`` absolute (oracle minus model; may be slightly negative
    by chance, F1 is not what the posterior optimises).
    """
    if not oracle:
        return {}
    oracle_ll = oracle[f"{prefix_oracle}log_loss"]
    model_ll = model_metrics[f"{prefix_model}log_loss"]
    return {
        "gap_log_loss": float(model_ll / oracle_ll - 1) if oracle_ll > 0 else np.nan,
        "gap_macro_f1": float(oracle[f"{prefix_oracle}macro_f1"] - model_metrics[f"{prefix_model}macro_f1"]),
    }
