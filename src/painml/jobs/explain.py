"""The explain job: every SHAP plot of a model for a cohort, written to a folder or logged to a run.

``painml explain --model URI --input FILE --out DIR`` runs :func:`explain_command`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painml.explain.plots import example_title, file_stem, global_figures, mean_abs, plot_waterfall
from painml.explain.reasons import reasons_text
from painml.explain.shap import Example, Explanation, explain, pick_examples, sample_positions
from painml.model.bundle import ModelBundle
from painml.record.schema import Records, load_records
from painml.record.vocabulary import display_name
from painml.serving.predictor import Predictor
from painml.tracking import runs


def _records(source: Any) -> Records:
    return source if isinstance(source, Records) else load_records(source)


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def write_plots(
    bundle: ModelBundle,
    records_frame,
    out_dir,
    patient_ids: Sequence[str] | None = None,
    max_rows: int = 2000,
    examples: Sequence[Example] | None = None,
) -> list[Path]:
    """Every explanation plot for a cohort into ``out_dir``; returns the files written.

    ``records_frame``: records in the patient-record schema (a DataFrame, a
    file path or :class:`painml.record.schema.Records`); validated first. Global plots
    use up to ``max_rows`` rows (a fixed random sample). Waterfalls: one per
    requested ``patient_ids`` (named after the id, see :func:`patient_stems`), else for example patients
    (``waterfall_example_<n>.png``, no identifiers): ``examples`` when given (positions in the records, as the
    reviewer report numbers them), else chosen by rule from the sample. Also writes
    ``mean_abs_shap.csv`` and ``reasons.csv`` (top reasons of each waterfall).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = _records(records_frame)
    frame = records.frame
    positions = []
    if patient_ids:
        ids = frame["patient_id"].astype(str).to_numpy()
        known = set(ids)
        unknown = [str(p) for p in patient_ids if str(p) not in known]
        if unknown:
            raise KeyError(f"patient_id not found in the input: {', '.join(unknown)}")
        positions = [int(np.flatnonzero(ids == str(p))[0]) for p in patient_ids]
    rows = sample_positions(len(frame), max_rows)
    sample = frame.iloc[rows]
    explanation = explain(bundle, records.features.iloc[rows], sample)
    written = []
    for name, fig in global_figures(explanation).items():
        written.append(_save(fig, out / f"{name}.png"))
    table = mean_abs(explanation)
    table.insert(0, "label", [display_name(f) for f in table.index])
    table.index.name = "feature"
    table.to_csv(out / "mean_abs_shap.csv")
    written.append(out / "mean_abs_shap.csv")
    reasons = []
    if patient_ids:
        stems = patient_stems([str(p) for p in patient_ids])
        chosen = explain(bundle, records.features.iloc[positions], frame.iloc[positions])
        for i, pid in enumerate(patient_ids):
            k = int(chosen.predicted[i])
            title = f"Patient {pid}: why {chosen.classes[k]} (probability {chosen.proba[i, k]:.0%})"
            written.append(_save(plot_waterfall(chosen, i, k, title=title), out / f"waterfall_{stems[i]}.png"))
            reasons.append(
                {
                    "patient_id": pid,
                    "predicted_class": chosen.classes[k],
                    "probability": float(chosen.proba[i, k]),
                    **_reason_columns(chosen, i, k),
                }
            )
    else:
        source, chosen_examples = explanation, list(examples or ())
        if examples is None:
            chosen_examples = pick_examples(explanation.proba, explanation.classes)
        else:
            at = [e.position for e in chosen_examples]
            source = explain(bundle, records.features.iloc[at], frame.iloc[at])
            chosen_examples = [Example(i, e.caption, e.class_index) for i, e in enumerate(chosen_examples)]
        for n, ex in enumerate(chosen_examples, start=1):
            k, p = ex.class_index, float(source.proba[ex.position, ex.class_index])
            title = example_title(n, source.classes[k], p)
            written.append(
                _save(
                    plot_waterfall(source, ex.position, k, title=title, subtitle=ex.caption),
                    out / f"waterfall_example_{n}.png",
                )
            )
            reasons.append(
                {
                    "example": f"example patient {n}",
                    "why_chosen": ex.caption,
                    "predicted_class": source.classes[k],
                    "probability": p,
                    **_reason_columns(source, ex.position, k),
                }
            )
    pd.DataFrame(reasons).to_csv(out / "reasons.csv", index=False)
    written.append(out / "reasons.csv")
    return written


def patient_stems(patient_ids: Sequence[str]) -> list[str]:
    """A distinct file-name stem per patient id: the id itself when it is file-name safe, else its safe
    form plus a short hash of the id, so ``a/b`` and ``a_b`` never write the same file."""
    stems = []
    for pid in patient_ids:
        stem = file_stem(pid)
        if stem != pid or stem.lower() in {file_stem(p).lower() for p in patient_ids if p != pid}:
            stem = f"{stem}_{hashlib.sha256(pid.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
        stems.append(stem)
    return stems


def _reason_columns(explanation: Explanation, row: int, k: int, n: int = 3) -> dict[str, str]:
    return {f"reason_{i + 1}": text for i, text in enumerate(reasons_text(explanation, row, k, n))}


def log_explanations(run_id: str, bundle: ModelBundle, frame, max_rows: int = 2000) -> list[str]:
    """Write the plots for ``frame`` (e.g. the run's test rows) under ``shap/`` of the run."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_plots(bundle, frame, tmp, max_rows=max_rows)
        runs.log_artifacts(run_id, tmp, "shap")
    return [f"shap/{p.name}" for p in paths]


def explain_command(
    model_uri: str,
    input_path,
    out_dir,
    patient_ids: Sequence[str] | None = None,
    tracking_uri: str | None = None,
    max_rows: int = 2000,
) -> list[Path]:
    """``painml explain``: load a model (``models:/``, ``runs:/`` or a folder), explain a cohort file."""
    predictor = Predictor.from_uri(str(model_uri), tracking_uri)
    return write_plots(predictor.bundle, _records(input_path), out_dir, patient_ids=patient_ids, max_rows=max_rows)
