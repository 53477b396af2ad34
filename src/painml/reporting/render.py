"""The reviewer report: one self-contained HTML file a clinician or auditor can read.

Rendered from :class:`painml.reporting.gather.ReportInputs`: handed over by
training in-process, or rebuilt from an MLflow run by :mod:`painml.jobs.report`. The file embeds every image as a base64 PNG, uses inline CSS and no
script or network, and is logged back to the run as ``report/report.html``.

Privacy: patient identifiers never appear (gallery patients are "example
patient 1..N"; :func:`render` checks this); site names appear only in
aggregate tables.
"""

from __future__ import annotations

import base64
import html
import io
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painml.evaluation import metrics as evaluate
from painml.evaluation import plots as evaluation_plots
from painml.explain import plots as explain_plots
from painml.explain import shap
from painml.features.encoding import record_columns, screening_scores
from painml.model.conformal import prediction_sets
from painml.record.columns import BY_NAME
from painml.record.vocabulary import block_title, display_name
from painml.reporting.gather import (
    BOOTSTRAP_REPS,
    CI_LEVEL,
    ReportInputs,
    bootstrap_intervals,
    component_table,
    missingness,
)

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
"""Section id -> heading, in page order (the tests check every one is present)."""


# --------------------------------------------------------------------------- entry points


# --------------------------------------------------------------------------- gathering


# --------------------------------------------------------------------------- statistics


# --------------------------------------------------------------------------- rendering helpers


def _png(fig, dpi: int = 96) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _img(data: bytes, alt: str, cls: str = "") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    klass = f' class="{cls}"' if cls else ""
    return f'<img{klass} src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _figure(data: bytes, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{_img(data, alt)}{cap}</figure>"


def _fmt(value: Any, kind: str = "num") -> str:
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
    return html.escape(str(value))


def _table(frame: pd.DataFrame, kinds: dict[str, str] | None = None, row_class=None, index: bool = False,
           caption: str = "") -> str:
    kinds = kinds or {}
    head = ([html.escape(str(frame.index.name or ""))] if index else []) + [html.escape(str(c)) for c in frame.columns]
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>")
    for key, row in frame.iterrows():
        klass = row_class(key, row) if row_class else ""
        cells = [f"<th scope=\"row\">{html.escape(str(key))}</th>"] if index else []
        for col in frame.columns:
            value = row[col]
            numeric = isinstance(value, (int, float, np.integer, np.floating))
            open_td = '<td class="n">' if numeric else "<td>"
            cells.append(f"{open_td}{_fmt(value, kinds.get(col, 'num'))}</td>")
        open_tr = f'<tr class="{klass}">' if klass else "<tr>"
        out.append(open_tr + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#1b1b1b;
  background:#fafafa;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 4rem;background:#fff}
h1{font-size:1.7rem;margin:.2rem 0 .4rem} h2{font-size:1.35rem;margin-top:2.4rem;border-bottom:2px solid #ddd;
  padding-bottom:.2rem} h3{font-size:1.1rem;margin-top:1.6rem}
.meta{color:#555;font-size:.9rem}
.banner{border-left:6px solid #b71c1c;background:#fdecea;padding:.8rem 1rem;margin:1rem 0}
.note{border-left:6px solid #1565c0;background:#e8f1fb;padding:.6rem 1rem;margin:1rem 0}
nav ol{columns:2;font-size:.95rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.88rem}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #d0d0d0;padding:.25rem .55rem;text-align:left;vertical-align:top}
thead th{background:#f0f0f0} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.winner{font-weight:700;background:#eef7ee} tr.ceiling{font-style:italic;background:#f6f6f6}
tr.flag{background:#fde2e2} tr.flag td:last-child{color:#b71c1c;font-weight:700}
tr.few{color:#777}
figure{margin:.8rem 0} figure img,img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem;align-items:start}
.gallery{display:grid;grid-template-columns:1fr;gap:1.4rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;break-inside:avoid}
.card h3{margin-top:0} .wrong{color:#b71c1c} .right{color:#1b5e20}
.card-body{display:grid;grid-template-columns:1fr 1.7fr;gap:1rem;align-items:start}
.wide img{max-width:900px;width:100%} .narrow img{max-width:640px;width:100%}
dl.card-table{display:grid;grid-template-columns:14rem 1fr;gap:.35rem 1rem}
dl.card-table dt{font-weight:600} dl.card-table dd{margin:0}
@media print{main{max-width:none} .pair,.card-body{grid-template-columns:1fr}}
"""


# --------------------------------------------------------------------------- rendering


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
    parts = [_header(inputs), _toc()]
    parts.append(_purpose(inputs))
    parts.append(_data(inputs))
    parts.append(_performance(inputs, y_index, proba))
    parts.append(_subgroups(inputs))
    parts.append(_explanations(inputs, features, frame_test, max_rows))
    gallery_html, example_ids = _gallery(inputs, features, frame_test, y_test, proba)
    parts.append(gallery_html)
    parts.append(_model_card(inputs, y_index, proba))
    body = "\n".join(parts)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>painml reviewer report: run {html.escape(inputs.run_id[:8])}</title>"
            f"<style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n")
    _check_no_identifiers(page, example_ids)
    return page


def _check_no_identifiers(page: str, ids: list[str]) -> None:
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    leaked = [i for i in ids if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", text)]
    if leaked:
        raise RuntimeError(f"the report would show {len(leaked)} patient identifiers; refusing to write it")


def _section(key: str, content: str) -> str:
    return f'<section id="{key}"><h2>{html.escape(SECTIONS[key])}</h2>\n{content}\n</section>'


def _header(inputs: ReportInputs) -> str:
    cfg = inputs.cfg
    commit = inputs.tags.get("git.commit", "unknown")
    dirty = " (uncommitted changes)" if inputs.tags.get("git.dirty") == "True" else ""
    return (f"<header><h1>Pain type classifier: reviewer report</h1>"
            f"<p class=\"meta\">Run <code>{html.escape(inputs.run_id)}</code> ({html.escape(inputs.run_name)}), "
            f"started {html.escape(inputs.started)}; config <code>{html.escape(cfg.name)}</code>; "
            f"code commit <code>{html.escape(commit[:12])}</code>{html.escape(dirty)}; "
            f"chosen model: <strong>{html.escape(_family_words(inputs.winner))}</strong>; "
            f"report generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.</p></header>")


def _toc() -> str:
    items = "".join(f'<li><a href="#{k}">{html.escape(v)}</a></li>' for k, v in SECTIONS.items())
    return f"<nav><ol>{items}</ol></nav>"


def _family_words(family: str) -> str:
    return {"gbm": "gradient-boosted trees (LightGBM)", "logistic": "multinomial logistic regression"}.get(family, family)


def _data_words(inputs: ReportInputs) -> str:
    lineage = inputs.lineage
    if lineage.get("source") == "simulate":
        return (f"<strong>simulated patients</strong>, drawn by painml's simulator (case mix "
                f"<code>{html.escape(str(lineage.get('preset')))}</code>, {int(lineage.get('n', 0)):,} patients, "
                f"seed {html.escape(str(lineage.get('seed')))}). No real patient's record was used")
    name = Path(str(lineage.get("path", "?"))).name
    sha = str(lineage.get("sha256", ""))[:16]
    if inputs.simulated:
        return (f"records from the file <code>{html.escape(name)}</code> (SHA-256 {html.escape(sha)}…), which carries "
                f"the simulator's ground-truth columns: these are <strong>simulated patients</strong>")
    return (f"records from the file <code>{html.escape(name)}</code> (SHA-256 {html.escape(sha)}…). painml cannot "
            f"check where a file came from: it is reported here as <strong>real clinical data</strong> only because "
            f"it carries no simulator ground truth")


def _purpose(inputs: ReportInputs) -> str:
    classes = ", ".join(inputs.bundle.classes)
    simulated = inputs.simulated
    banner = ('<div class="banner"><strong>Trained and tested on simulated patients.</strong> The figures below '
              'show how well the method recovers the simulator\'s rules; they say nothing yet about real patients. '
              'The model must be validated on real clinic records before any clinical use.</div>') if simulated else ""
    return _section("purpose", f"""
{banner}
<p>The model reads a chronic-pain patient's record (history, pain descriptors, DN4 and painDETECT answers,
examination findings, test results and comorbidities) and estimates the probability that the clinician would
classify the pain as <strong>{html.escape(classes)}</strong>. It was trained on {_data_words(inputs)}.</p>
<h3>It is for</h3>
<ul>
<li>A <strong>decision aid</strong> for clinicians assessing adults with chronic pain: a second opinion on the pain
mechanism, with the findings that drove it, to prompt a closer look (for example an examination or a test not yet
done) when the model and the clinician disagree.</li>
<li>Auditing and research: comparing the screening questionnaires with a model that reads the whole record.</li>
</ul>
<h3>It is not</h3>
<ul>
<li><strong>Not a diagnosis.</strong> The label it learnt is a clinician's classification; the grading of
neuropathic pain (NeuPSIG: possible, probable, definite) still rests on the history, the examination and
confirmatory tests.</li>
<li>Not a treatment recommendation, and not for acute pain, children, or settings unlike the one it was trained on.</li>
<li>Not a reason to skip the examination: its probabilities are only as good as the recorded findings, and a
finding that was not recorded counts as "not recorded", not as "absent".</li>
</ul>
<p>Each prediction comes with calibrated probabilities, a {inputs.cfg.conformal_confidence:.0%} prediction set (the
classes the true one is among {inputs.cfg.conformal_confidence:.0%} of the time on exchangeable data) and the
findings that pushed the prediction most.</p>""")


def _data(inputs: ReportInputs) -> str:
    frame, y, rows = inputs.frame, inputs.y, inputs.rows
    classes = inputs.bundle.classes
    splits = pd.DataFrame({"rows": {k: len(v) for k, v in rows.items()}})
    splits["share"] = splits["rows"] / len(frame)
    splits.index.name = "split"
    splits["used for"] = pd.Series({
        "train": "fitting the model (early stopping on a slice of it)",
        "calibration": f"{inputs.cfg.calibration} calibration of the probabilities",
        "conformal": "the prediction-set threshold", "test": "every number in this report"})
    test = rows["test"]
    shares = pd.DataFrame({
        "all rows": pd.Series(y).value_counts().reindex(classes, fill_value=0),
        "all rows share": pd.Series(y).value_counts(normalize=True).reindex(classes, fill_value=0),
        "test rows": pd.Series(y[test]).value_counts().reindex(classes, fill_value=0),
        "test share": pd.Series(y[test]).value_counts(normalize=True).reindex(classes, fill_value=0),
    })
    shares.index.name = "class"
    miss = missingness(frame).set_index("block")
    sites = frame["site"].fillna("unknown").astype(str)
    site_table = pd.crosstab(sites, pd.Series(y, index=frame.index, name="class"), normalize="index")
    site_table = site_table.reindex(columns=classes, fill_value=0.0)
    site_table.insert(0, "rows", sites.value_counts().reindex(site_table.index))
    site_table.index.name = "site"
    site_table.columns = ["rows", *[f"{c} share" for c in classes]]
    kinds_sites = {f"{c} share": "pct" for c in classes} | {"rows": "int"}
    return _section("data", f"""
<p>{len(frame):,} patients from {sites.nunique()} site(s); label: the clinician's classification
(<code>pain_type</code>). The rows were split once, at random and stratified by class (seed {inputs.cfg.seed}),
into disjoint sets:</p>
{_table(splits, {"rows": "int", "share": "pct"}, index=True)}
<div class="pair"><div>{_table(shares, {"all rows": "int", "all rows share": "pct", "test rows": "int",
                                       "test share": "pct"}, index=True, caption="Class shares")}</div>
<div>{_table(site_table, kinds_sites, index=True, caption="Sites (aggregate counts only)")}</div></div>
{_table(miss, {"columns": "int", "rows with the whole block missing": "pct", "cells missing": "pct"}, index=True,
        caption="Missing values per block of the record (all rows)")}
<p class="note">Missing is normal here: sites use different questionnaires, and tests are ordered only when
clinically indicated. A test "not done" is information in itself, and the model is allowed to use it.</p>""")


def _performance(inputs: ReportInputs, y_index: np.ndarray, proba: np.ndarray) -> str:
    cmp = inputs.comparison.copy()
    cmp.index.name = "model"
    winner = inputs.winner

    def row_class(key, row) -> str:
        if key == winner:
            return "winner"
        return "ceiling" if "ceiling" in str(key) else ""

    cmp.columns = [c.replace("_", " ") for c in cmp.columns]
    ci = bootstrap_intervals(y_index, proba)
    ci["95% interval"] = [f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(ci["low"], ci["high"])]
    ci = ci.set_index("metric")[["estimate", "95% interval"]]
    ci.index = [i.replace("_", " ") for i in ci.index]
    ci.index.name = "metric"
    m = inputs.metrics
    coverage = m.get(f"{winner}.test_conformal_coverage", m.get("test_conformal_coverage"))
    size = m.get(f"{winner}.test_conformal_set_size", m.get("test_conformal_set_size"))
    images = inputs.images
    if "confusion" not in images or "calibration" not in images:
        y_test = inputs.y[inputs.rows["test"]]
        classes = inputs.bundle.classes
        if "confusion" not in images:
            pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
            images["confusion"] = _png(evaluation_plots.plot_confusion(evaluate.confusion(y_test, pred, classes),
                                                               f"{winner}: confusion matrix (test)"))
        if "calibration" not in images:
            images["calibration"] = _png(evaluation_plots.plot_calibration(y_test, proba, classes,
                                                                   f"{winner}: calibration (test)"))
    ceiling = "exact posterior (ceiling)" in inputs.comparison.index
    ceiling_text = (" The <em>exact posterior</em> row is the Bayes ceiling: the simulator's own probabilities, "
                    "the best any model could do on these patients." if ceiling else
                    " (No ceiling: real data carries no exact posterior.)")
    y_test = inputs.y[inputs.rows["test"]]
    tools = component_table(inputs.baselines, y_test, proba, inputs.bundle.classes, winner).set_index("tool")
    tools.columns = [c.replace("_", " ") for c in tools.columns]
    tools_html = _table(tools, {"coverage": "pct"}, index=True,
                        row_class=lambda key, _: "winner" if str(key).startswith(winner) else "",
                        caption="Is a neuropathic component present? The model against the screening tools") if len(tools) else ""
    beta = inputs.bundle.temperature_factor
    return _section("performance", f"""
<p>All numbers are on the {len(y_index):,} test patients, which neither the model nor its calibration saw.
The chosen model (bold) is compared with the other family, with the best achievable, and with the screening tools
clinicians use today, scored on the same patients.{ceiling_text}</p>
{_table(cmp, row_class=row_class, index=True, caption="Three classes: test-set metrics (higher is better except log loss, Brier and ECE)")}
<div class="pair"><div>{_table(ci, index=True, caption=f"{_family_words(winner)}: {CI_LEVEL:.0%} bootstrap intervals ({BOOTSTRAP_REPS} resamples of the test rows)")}
<p>Prediction sets: target coverage {inputs.cfg.conformal_confidence:.0%}, observed {_fmt(coverage, "pct")},
average size {_fmt(size)} classes.</p></div>
<div>{_figure(images["confusion"], "confusion matrix", "Rows: the clinician's label; columns: the model's. Each cell: count and share of its row.")}</div></div>
<p>The yes/no tools answer a simpler question than the model. To compare like with like, the model's probability
of a neuropathic component (neuropathic or mixed) is scored on the same question. A tool is scored only where its
items were recorded (coverage).</p>
{tools_html}
<div class="pair"><div>{_figure(images["calibration"], "calibration curves", "Calibration: predicted probability against observed frequency, one curve per class (one-vs-rest, 10 quantile bins); the dashed diagonal is perfect calibration.")}</div>
<div><h3>Calibration</h3><p>Probabilities were calibrated by {html.escape(inputs.cfg.calibration)} scaling on the
calibration rows{f" (inverse temperature {beta:.3f})" if beta else ""}. Expected calibration error on the test rows:
{_fmt(m.get("test_ece"))}; Brier score {_fmt(m.get("test_brier"))}. Points near the diagonal mean that, among
patients given a probability of about 70%, about 70% had that class.</p></div></div>
""")


def _subgroups(inputs: ReportInputs) -> str:
    table = inputs.subgroups
    if table.empty:
        return _section("subgroups", "<p>The run logged no subgroup table.</p>")
    keep = [c for c in ("group", "level", "n", "macro_f1", "balanced_accuracy", "accuracy", "log_loss", "ece", "flag")
            if c in table.columns]
    shown = table[keep].copy()
    shown["flag"] = shown["flag"].fillna("") if "flag" in shown else ""
    flagged = shown[shown["flag"] == "markedly worse"]

    def row_class(_, row) -> str:
        return {"markedly worse": "flag", "too few rows": "few"}.get(row.get("flag", ""), "")

    shown.columns = [c.replace("_", " ") for c in shown.columns]
    summary = (f"<p class=\"banner\"><strong>{len(flagged)} subgroup(s) markedly worse</strong> than overall "
               f"(highlighted): " + ", ".join(f"{html.escape(str(g))} = {html.escape(str(v))}"
                                              for g, v in zip(flagged["group"], flagged["level"])) + ".</p>"
               if len(flagged) else "<p class=\"note\">No subgroup is markedly worse than overall.</p>")
    return _section("subgroups", f"""
<p>The same test metrics per sex, age band, site and questionnaire used. A subgroup is flagged
<em>markedly worse</em> when its macro-F1 is more than {evaluate.WORSE_F1_DROP:.2f} below overall or its log loss more
than {evaluate.WORSE_LOG_LOSS_RATIO - 1:.0%} above it; groups under 30 patients are too small to judge.</p>
{summary}
{_table(shown.reset_index(drop=True), {"n": "int"}, row_class=row_class)}""")


def _explanations(inputs: ReportInputs, features: pd.DataFrame, frame: pd.DataFrame, max_rows: int) -> str:
    classes = inputs.bundle.classes
    images: dict[str, bytes] = {}
    order: list[str]
    shap_dir = inputs.shap_dir
    if shap_dir is not None and (shap_dir / "mean_abs_shap.csv").exists():
        table = pd.read_csv(shap_dir / "mean_abs_shap.csv", index_col=0)
        images = {p.stem: p.read_bytes() for p in shap_dir.glob("*.png")}
        order = list(table.index)
        n_rows = min(len(frame), max_rows)
    else:
        rows = shap.sample_positions(len(frame), max_rows)
        explanation = shap.explain(inputs.bundle, features.iloc[rows], frame.iloc[rows])
        images = {name: _png(fig) for name, fig in explain_plots.global_figures(explanation).items()}
        table = explain_plots.mean_abs(explanation)
        order = list(table.index)
        n_rows = len(rows)
    per_class = []
    for c in classes:
        key = explain_plots.file_stem(c)
        bee, bar = images.get(f"beeswarm_{key}"), images.get(f"bar_{key}")
        if bee is None or bar is None:
            continue
        top = [display_name(f) for f in table[c].sort_values(ascending=False).index[:3]]
        per_class.append(f"""<h3>{html.escape(c)}</h3>
<p>Most influential for <strong>{html.escape(c)}</strong> on average: {html.escape(", ".join(top))}.</p>
<div class="wide">{_figure(bee, f"beeswarm for {c}", explain_plots.BEESWARM_NOTE)}</div>
<div class="narrow">{_figure(bar, f"mean absolute SHAP for {c}", "Average size of each feature's push on this class, in either direction.")}</div>""")
    dependence = [images[f"dependence_{explain_plots.file_stem(f)}"] for f in order if f"dependence_{explain_plots.file_stem(f)}" in images]
    dep_html = "".join(_figure(d, "dependence plot", "") for d in dependence)
    comparison = images.get("class_comparison")
    return _section("explanations", f"""
<p>How the chosen model uses each finding, over {n_rows:,} test patients. The numbers are SHAP values: for one
patient and one class, how far each finding moved the model's score for that class away from the average patient's,
in <strong>log-odds</strong> (the calibrated model's logit of the class; +0.7 roughly doubles the odds of that class
against the others, -0.7 halves them). For each patient, the average patient's score plus all SHAP values equals
the model's score, exactly. One-hot columns and missing-value flags are added back into the record's own column,
so "pain region" is one feature; the screening scores (DN4, painDETECT, LANSS, ID-Pain, NeuPSIG grade) are
features of their own, computed from the record.</p>
<p class="note">These plots show what the model relies on, not what causes pain: a finding can matter because it
travels with the true cause in the training data.</p>
{"".join(per_class)}
<h3>Comparing the classes</h3>
{_figure(comparison, "class comparison", "Mean |SHAP value| per feature for each class: which findings separate which classes.") if comparison else ""}
<h3>How single findings act</h3>
<p>Dependence plots for the most influential findings: each dot is one patient; x is the recorded value (jittered),
y its SHAP value for each class. Grey: not recorded.</p>
{dep_html}""")


def _gallery(inputs: ReportInputs, features: pd.DataFrame, frame: pd.DataFrame, y_test: np.ndarray,
             proba: np.ndarray) -> tuple[str, list[str]]:
    classes = inputs.bundle.classes
    examples = shap.pick_examples(proba, classes, y_test)
    ids = [str(v) for v in frame["patient_id"].iloc[[e.position for e in examples]]] if "patient_id" in frame else []
    if not examples:
        return _section("gallery", "<p>No test patients.</p>"), ids
    positions = [e.position for e in examples]
    chosen = shap.explain(inputs.bundle, features.iloc[positions], frame.iloc[positions])
    qhat = inputs.bundle.metadata.conformal_qhat
    sets = prediction_sets(proba[positions], qhat) if qhat is not None else None
    cards = []
    for n, ex in enumerate(examples, start=1):
        i, k = n - 1, ex.class_index
        predicted, truth = classes[k], str(y_test[ex.position])
        p = float(proba[ex.position, k])
        title = f"Example patient {n}: why {predicted} (probability {p:.0%})"
        fig = explain_plots.plot_waterfall(chosen, i, k, title=title, subtitle=ex.caption)
        verdict = ('<span class="right">correct</span>' if truth == predicted
                   else f'<span class="wrong">wrong: the clinician said {html.escape(truth)}</span>')
        set_text = ""
        if sets is not None:
            members = [c for c, keep in zip(classes, sets[i]) if keep]
            set_text = f"; prediction set: {html.escape(' or '.join(members))}"
        probs = ", ".join(f"{html.escape(c)} {proba[ex.position, j]:.0%}" for j, c in enumerate(classes))
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in _plain_reasons(chosen, i, k))
        cards.append(f"""<article class="card"><h3>Example patient {n}: {html.escape(ex.caption)}</h3>
<div class="card-body"><div><p>Model: <strong>{html.escape(predicted)}</strong> ({probs}){set_text}. {verdict}.</p>
<p>Main reasons, in the model's terms:</p><ol>{reasons}</ol></div>
{_figure(_png(fig), f"waterfall for example patient {n}", "From the average patient's score (dashed line) to this patient's (solid line), largest contributions at the top; blue bars pushed away from the predicted class.")}
</div></article>""")
    intro = (f"<p>{len(examples)} test patients chosen by rule, not by hand: for each class, the most and the least "
             f"certain of the patients the model got right, and of those it got wrong. Identifiers are never shown.</p>")
    return _section("gallery", intro + f'<div class="gallery">{"".join(cards)}</div>'), ids


def _plain_reasons(explanation: shap.Explanation, row: int, k: int, n: int = 4) -> list[str]:
    cls = explanation.classes[k]
    values = explanation.values[row, :, k]
    out = []
    for j in np.argsort(-np.abs(values))[:n]:
        v = float(values[j])
        label = explanation.label(row, explanation.feature_names[j])
        out.append(f"{label}: made {cls} {'more' if v >= 0 else 'less'} likely ({v:+.2f} log-odds)")
    return out


def _model_card(inputs: ReportInputs, y_index: np.ndarray, proba: np.ndarray) -> str:
    cfg, bundle = inputs.cfg, inputs.bundle
    classes = bundle.classes
    groups = cfg.features.groups
    columns = record_columns(groups)
    scores = screening_scores(groups)
    family_cfg = next(m for m in cfg.models if m.family == inputs.winner)
    chosen = dict(bundle.metadata.hyperparameters) or family_cfg.model_dump()  # after any search
    params = ", ".join(f"{k} = {v}" for k, v in chosen.items() if k != "family")
    model = bundle.pipeline.named_steps["model"]
    if hasattr(model, "booster_"):
        params += f"; {model.booster_.current_iteration()} boosting rounds kept after early stopping"
    m = inputs.metrics
    ci = bootstrap_intervals(y_index, proba).set_index("metric")
    counts = pd.Series(inputs.y[inputs.rows["train"]]).value_counts().reindex(classes, fill_value=0)
    beta = bundle.temperature_factor
    missing_words = ("LightGBM sends missing values down the branch it learnt for them; category columns get a "
                     "\"not recorded\" level of their own" if inputs.winner == "gbm" else
                     "numbers are filled with the training median and a missing-value indicator is added per column "
                     "(both standardised); category columns get a \"not recorded\" level of their own")
    items = [
        ("Source of data (5a)", _data_words(inputs) + "."),
        ("Setting and eligibility (6a, 6b)",
         "Adults (the record requires age 18 or over) with pain of 3 months or longer; "
         f"{inputs.frame['site'].nunique()} site(s). "
         + (f"Simulated case mix <code>{html.escape(str(inputs.lineage.get('preset')))}</code>."
            if inputs.lineage.get("source") == "simulate" else "Setting as in the source file; painml does not record it.")),
        ("Outcome (8a)", f"The clinician's classification of the pain mechanism (<code>pain_type</code>): "
                         f"{html.escape(', '.join(classes))}. Assessed from the same record, so not blinded to the "
                         "predictors." + (" In simulated data, drawn from the simulator's generative model." if inputs.simulated else "")),
        ("Predictors (9a)", f"{len(columns)} record columns in the blocks "
                            f"{html.escape(', '.join(block_title(g).name for g in groups if g != 'screening'))}"
                            + (f", plus the screening scores {html.escape(', '.join(scores))} computed from them" if scores else "")
                            + ". All come from the clinic assessment; test results only where a test was done."),
        ("Sample size (10)", f"{len(inputs.frame):,} patients; {len(inputs.rows['train']):,} for training ("
                             + ", ".join(f"{html.escape(c)} {counts[c]:,}" for c in classes) + "). No formal sample size calculation."),
        ("Missing data (11)", f"No rows are dropped or imputed before modelling. {missing_words}. Screening scores are "
                              "missing when any of their items is (no partial sums)."),
        ("Model type and building (12)", f"{_family_words(inputs.winner)} ({html.escape(params)}), chosen over "
                                         f"{html.escape(', '.join(_family_words(f.family) for f in cfg.models if f.family != inputs.winner) or 'no other family')} "
                                         f"by test {html.escape(cfg.tracking.primary_metric.replace('test_', '').replace('_', ' '))}; "
                                         f"class weights: {cfg.class_weight}; probabilities calibrated by {cfg.calibration} "
                                         f"scaling" + (f" (factor {beta:.3f})" if beta else "") + " on a separate calibration split."),
        ("Class imbalance (13)", f"Class weights '{cfg.class_weight}'; metrics reported per class and macro-averaged."),
        ("Fairness (14)", "Metrics per sex, age band, site and questionnaire, with markedly worse groups flagged "
                          "(see Subgroups)."),
        ("Model output (15)", f"Calibrated probabilities for {html.escape(', '.join(classes))}, the most probable class, a "
                              f"{cfg.conformal_confidence:.0%} conformal prediction set and the top reasons (SHAP)."),
        ("Internal validation (12b, 16)", "A single random stratified split: train, calibration, conformal and test "
                                          "sets are disjoint; the test set is used once, for these numbers. No external validation."),
        ("Performance with intervals (23a)",
         "; ".join(f"{html.escape(k.replace('_', ' '))} {r.estimate:.3f} ({CI_LEVEL:.0%} CI {r.low:.3f} to {r.high:.3f})"
                   for k, r in ci.iterrows()) + f"; AUROC neuropathic {_fmt(m.get('test_auroc_neuropathic'))}."),
        ("Calibration (23a)", f"Expected calibration error {_fmt(m.get('test_ece'))}, Brier score "
                              f"{_fmt(m.get('test_brier'))}; curves in Performance."),
        ("Limitations (26)",
         ("Trained and tested on simulated patients only: the performance shows the method works on data that follows "
          "the simulator's assumptions, not that it works in a clinic. " if inputs.simulated else "")
         + "Internal validation only; the reference label is a clinician's judgement, not a gold standard; the model "
         "inherits the sites' recording habits (which questionnaire, which tests); SHAP values describe the model, "
         "not causes; subgroups under 30 patients cannot be judged."),
        ("Usability (27)", "A decision aid alongside the clinical assessment, never instead of it; see the first section."),
        ("Code and reproducibility (18f)", f"painml, commit <code>{html.escape(inputs.tags.get('git.commit', 'unknown')[:12])}</code>; "
                                           f"MLflow run <code>{html.escape(inputs.run_id)}</code> holds the config, data "
                                           "lineage, metrics, models and this report."),
    ]
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in items)
    return _section("model-card", f"""<p>The applicable items of the TRIPOD+AI reporting checklist (Collins et al.,
BMJ 2024;385:e078378); item numbers in brackets.</p><dl class="card-table">{rows}</dl>""")
