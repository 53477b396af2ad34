"""The reviewer report: every section, images embedded, no identifiers, and a real headless browser."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from painml.jobs import report as report_job
from painml.reporting import render
from painml.tracking import store

pytestmark = pytest.mark.slow  # every test here trains a model or reads a trained store

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def report_file(trained_store, tmp_path_factory) -> Path:
    """The report of the shared smoke run, built from the run alone and not logged (the store is read-only)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(out.parent)
        return report_job.build_report(trained_store.result.run_id, trained_store.uri, out, log=False)


def test_report_holds_every_section(report_file):
    page = report_file.read_text(encoding="utf-8")
    for key, heading in render.SECTIONS.items():
        assert f'<section id="{key}"><h2>{heading.replace("+", "+")}</h2>' in page.replace("&#x27;", "'"), key
    for words in (
        "decision aid",
        "Not a diagnosis",
        "simulated patients",
        "exact posterior (ceiling)",
        "bootstrap intervals",
        "Example patient 1",
        "Missing data (11)",
        "Limitations (26)",
        "log-odds",
        "markedly worse",
        "DN4 &gt;= 4",
    ):
        assert words in page, words


def test_holdout_report_says_it_used_a_test_split(report_file, trained_store):
    page = _text(report_file)
    n_test = len(trained_store.result.families[trained_store.result.winner].proba)
    assert f"held-out test set of {n_test:,} patients" in page
    assert "out-of-fold" not in page
    assert "Stability of the predictions Not assessed: holdout validation" in page
    assert "No formal sample size calculation" not in page
    assert "patients enough? (TRIPOD+AI item 10)" in page and "painDETECT bands" in page  # three classes
    for words in ("Calibration intercept and slope per class (test)", "a slope below 1 means", "benefit at 20%"):
        assert words in page, words


# --------------------------------------------------------------------------- a cross-validated run


@dataclass(frozen=True)
class CvRun:
    """One cross-validated run of ``configs/small_cohort.yaml``: its report written at training, and rebuilt."""

    uri: str
    result: object
    metrics: dict
    trained: Path
    rebuilt: Path


@pytest.fixture(scope="module")
def cv_run(mlflow_template_db, tmp_path_factory) -> CvRun:
    """Train the small-cohort config (two classes, 5-fold cross-validation, here x 2 repeats) on 400 simulated
    patients into a store of its own, then rebuild its report from the run (not logged)."""
    import mlflow

    from painml.config import load_config
    from painml.jobs.train import run_training
    from painml.simulator.simulate import simulate

    directory = tmp_path_factory.mktemp("cv-store")
    db = directory / store.DEFAULT_DB
    shutil.copy(mlflow_template_db, db)
    uri = "sqlite:///" + db.as_posix()
    data = directory / "clinic.csv"
    simulate("orthopaedic", 400, 5).to_csv(data, index=False)
    cfg = load_config(REPO / "configs" / "small_cohort.yaml")
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"path": data}),
            "validation": cfg.validation.model_copy(update={"repeats": 2}),
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        result = run_training(cfg, tracking_uri=uri, report_dir=lambda run_id: directory / "trained")
        while mlflow.active_run() is not None:
            mlflow.end_run()
        metrics = dict(mlflow.MlflowClient(tracking_uri=uri).get_run(result.run_id).data.metrics)
        rebuilt = report_job.build_report(result.run_id, uri, directory / "rebuilt.html", log=False)
    assert result.validation == "cv"
    return CvRun(uri, result, metrics, result.report_file, rebuilt)


def _text(path: Path) -> str:
    """The page as a reader sees it: no images, no tags, entities decoded, whitespace collapsed."""
    page = DATA_URI.sub('src=""', path.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _table(path: Path, caption: str) -> list[list[str]]:
    """The cells of the first table whose caption holds ``caption``, row by row (header first)."""
    page = path.read_text(encoding="utf-8")
    words = r"\s+".join(re.escape(w) for w in caption.split())
    found = re.search(r"<table><caption>[^<]*?" + words + r".*?</table>", page, flags=re.S)
    assert found, caption
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(0), flags=re.S)
    cell = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", flags=re.S)
    return [[html.unescape(c).strip() for c in cell.findall(row)] for row in rows]


def _rows(path: Path, caption: str) -> dict[str, list[str]]:
    """A table's body rows by their first cell."""
    return {r[0]: r for r in _table(path, caption)[1:]}


def test_cv_report_says_out_of_fold_never_test_set(cv_run):
    for path in (cv_run.trained, cv_run.rebuilt):
        page = _text(path)
        assert "out-of-fold predictions from 5-fold cross-validation x 2 repeats" in page
        assert "the registered model was fitted on all 400 patients" in page
        for wrong in ("test set", "test rows", "test patients", "held-out test"):
            assert wrong not in page, (path.name, wrong)
        assert "No test split" in page and "Internal validation (12, 16)" in page


def test_cv_report_shows_estimates_with_intervals_beside_apparent_values(cv_run):
    m = cv_run.metrics
    for path in (cv_run.trained, cv_run.rebuilt):
        head, *_ = _table(path, ": out-of-fold estimates with 95% intervals")
        assert head == ["metric", "out-of-fold estimate", "95% interval", "apparent (in-sample)",
                        "optimism (apparent - estimate)"]  # fmt: skip
        _, estimate, interval, apparent, _ = _rows(path, ": out-of-fold estimates with 95% intervals")["log loss"]
        assert estimate == f"{m['test_log_loss']:.3f}"
        assert interval == f"{m['test_log_loss_ci_low']:.3f} to {m['test_log_loss_ci_high']:.3f}"
        assert apparent == f"{m['apparent_log_loss']:.3f}"


def test_cv_report_has_the_small_data_panels(cv_run):
    m, winner, trained = cv_run.metrics, cv_run.result.winner, cv_run.trained
    page, markup = _text(trained), trained.read_text(encoding="utf-8")
    # sample size (TRIPOD+AI item 10), from the structured check training handed over
    assert "Is 400 patients enough? (TRIPOD+AI item 10)" in page
    assert "No formal sample size calculation" not in page
    size = cv_run.result.sample_size[winner]
    assert size.verdict in page
    row = _rows(trained, "Sample size per model family")[winner]
    assert row[2] == f"{size.n_required:,}" and row[3].startswith(f"({size.binding})")
    assert "Anticipated performance: each class pair's C under the simulator's exact posterior" in page
    # calibration: intercept and slope per class with intervals, the curves, and the plain sentence
    slopes = _rows(trained, "Calibration intercept and slope per class (out-of-fold)")
    for c in ("nociceptive", "neuropathic"):
        low, high = m[f"test_calibration_slope_{c}_ci_low"], m[f"test_calibration_slope_{c}_ci_high"]
        assert slopes[c][4] == f"{m[f'test_calibration_slope_{c}']:.2f}"
        assert slopes[c][5] == f"{low:.3f} to {high:.3f}"
    assert "a slope below 1 means the predicted probabilities are too extreme" in page
    assert 'alt="flexible calibration curves"' in markup
    # decision curves: the figure and net benefit at three thresholds, each tool on its own rows; no p-values
    decisions = _table(trained, "Benefit (net benefit, per patient)")
    assert decisions[0][:5] == ["patients", "strategy", "benefit at 10%", "benefit at 20%", "benefit at 30%"]
    strategies = [r[1] for r in decisions[1:]]
    assert f"model ({winner})" in strategies and "treat all" in strategies and "DN4 >= 4" in strategies
    assert 'alt="decision curves"' in markup
    assert "preference" in page and "p-value" not in page.replace("No p-values", "")
    # stability (numbers, per-class MAPE, the run's own figure) and per-class coverage
    assert f"Mean absolute prediction error (MAPE) {m['stability_mape']:.3f}" in page
    assert f"{m['stability_unstable_share']:.1%} of patients" in page
    assert _table(trained, "MAPE per class")
    assert 'alt="prediction instability plot"' in markup
    coverage = _rows(trained, "Prediction-set coverage per true class")
    for c in ("nociceptive", "neuropathic"):
        assert coverage[c][2] == f"{m[f'test_conformal_coverage_{c}']:.1%}"
    assert "painDETECT bands" not in page  # two classes: no three-class baseline row


def test_rebuilt_cv_report_uses_the_logged_out_of_fold_predictions(cv_run, tmp_path):
    """Rebuilt from the run, the report reads the logged out-of-fold probabilities, never the registered model's
    own (in-sample) ones: what it computes from them (calibration, the screening-tool comparison) matches the
    report written at training."""
    import numpy as np

    from painml.record.columns import BY_NAME

    for caption in ("Calibration intercept and slope per class", "Is a neuropathic component present?"):
        assert _table(cv_run.rebuilt, caption) == _table(cv_run.trained, caption), caption
    store.use_store(cv_run.uri)
    winner = cv_run.result.winner
    inputs = report_job.inputs_from_run(cv_run.result.run_id, tmp_path)
    assert inputs.validation == "cv"
    np.testing.assert_array_equal(inputs.rows["test"], np.arange(400))
    np.testing.assert_allclose(inputs.proba, cv_run.result.families[winner].proba, atol=1e-12)
    features = inputs.frame.loc[:, [c for c in inputs.frame.columns if c in BY_NAME and BY_NAME[c].kind != "id"]]
    assert np.abs(inputs.bundle.predict_proba(features) - inputs.proba).max() > 1e-3  # in-sample would differ
    # the sample-size panel is rebuilt from sample_size.txt and the logged metrics; the figure from the run
    page = _text(cv_run.rebuilt)
    size = cv_run.result.sample_size[winner]
    assert size.verdict in page
    assert _rows(cv_run.rebuilt, "Sample size per model family")[winner][2] == f"{size.n_required:,}"
    assert 'alt="prediction instability plot"' in cv_run.rebuilt.read_text(encoding="utf-8")


def test_cv_reports_never_show_patient_identifiers(cv_run):
    import pandas as pd

    ids = set(pd.read_csv(cv_run.trained.parents[1] / "clinic.csv")["patient_id"].astype(str))
    for path in (cv_run.trained, cv_run.rebuilt):
        page = DATA_URI.sub('src=""', path.read_text(encoding="utf-8"))
        assert not ids & set(re.findall(r"[\w-]+", page)), path.name


def test_four_classes_render(tmp_path):
    """Any label set renders: four classes from a file (no simulator truth), one model fitted without MLflow,
    its report rendered from what training would hand over."""
    import numpy as np

    from painml.config import TrainConfig
    from painml.evaluation import metrics as evaluate
    from painml.evaluation.holdout import FamilyResult, comparison_table, evaluate_family
    from painml.evaluation.sample_size import CRITERIA, assess
    from painml.model.dataset import load_dataset, split_rows
    from painml.model.fit import build_bundle, fit_family
    from painml.simulator.simulate import simulate

    frame = simulate("pain_clinic", 800, 3)
    frame = frame.loc[:, [c for c in frame.columns if not c.startswith("true_")]]
    relabel = (frame["pain_type"] == "nociceptive") & (np.random.default_rng(0).random(len(frame)) < 0.4)
    frame.loc[relabel, "pain_type"] = "nociplastic"
    frame.to_csv(tmp_path / "four.csv", index=False)
    classes = ["nociceptive", "neuropathic", "mixed", "nociplastic"]
    cfg = TrainConfig.model_validate(
        {
            "name": "four",
            "data": {"source": "file", "path": str(tmp_path / "four.csv")},
            "labels": classes,
            "validation": "holdout",
            "models": [{"family": "logistic", "C": 1.0}],
        }
    )
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    estimator, chosen = fit_family(cfg.models[0], cfg, data.X, data.y, rows)
    bundle = build_bundle(estimator, "logistic", cfg, data, rows, chosen.model_dump())
    metrics, proba, tables = evaluate_family(bundle, data, rows)
    test = rows["test"]
    baselines = evaluate.baseline_metrics(data.records.frame.iloc[test], data.y[test], classes)
    comparison = comparison_table(
        {"logistic": FamilyResult("logistic", bundle, metrics, proba, 0.0, tables)}, {}, baselines
    )
    size = assess(len(data.y), data.class_counts(classes), 40, 0.75, c_method="exact")
    inputs = report_job.training_inputs(
        "0" * 32, "four", "2026-01-01 00:00 UTC", {"painml.winner": "logistic"}, cfg, data, rows, "logistic",
        bundle, metrics, comparison, tables["subgroups"], baselines, proba=proba, clinical=tables["clinical"],
        sample_size={"logistic": size}, sample_size_basis="a C statistic of 0.75 for every class pair",
    )  # fmt: skip
    out = tmp_path / "report.html"
    out.write_text(render.render(inputs, max_rows=200), encoding="utf-8")
    page = _text(out)
    assert "Four classes (nociceptive, neuropathic, mixed, nociplastic): test metrics" in page
    assert "Three classes" not in page and "real clinical data" in page
    assert "painDETECT bands" not in comparison.index  # a three-class rule cannot name nociplastic
    for term in ("macro F1", "balanced accuracy", "ECE", "Brier score", "log loss", "AUROC", "temperature"):
        assert f"<dt>{term}" in out.read_text(encoding="utf-8"), term
    assert "prediction set (conformal)" in page and "exact posterior (Bayes ceiling)" in page and "logit" in page
    y_test, predicted = data.y[test], np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    mixed = y_test == "mixed"
    recognised = np.mean(predicted[mixed] == "mixed")
    assert f"Mixed pain is recognised in {recognised:.0%} of the patients who have it" in page
    tools = _rows(out, "Each screening tool and the model on the same patients")
    scored = baselines.set_index("baseline")
    for tool, cells in tools.items():
        assert int(cells[1].replace(",", "")) == scored.loc[tool, "n_scored"], tool  # the tool's own rows
    assert set(_rows(out, "Calibration intercept and slope per class (test)")) == set(classes)
    assert set(_rows(out, "Prediction-set coverage per true class")) == set(classes)
    assert "patients labelled nociplastic are not asked" in page  # the decision concerns the other three
    assert size.verdict in page and f"({size.binding}) {CRITERIA[size.binding]}" in page


def test_report_and_shap_folder_number_the_same_example_patients(report_file, trained_store, tmp_path):
    """ "Example patient N" in the report is the patient of the run's shap/waterfall_example_N.png."""
    import mlflow
    import pandas as pd

    store.use_store(trained_store.uri)
    folder = mlflow.artifacts.download_artifacts(
        run_id=trained_store.result.run_id, artifact_path="shap/reasons.csv", dst_path=str(tmp_path)
    )
    logged = pd.read_csv(folder)
    page = _text(report_file)
    cards = re.findall(r"Example patient (\d+): ([^:]+?, (?:most|least) certain)", page)
    assert len(cards) == len(logged) > 0
    for (n, caption), row in zip(cards, logged.itertuples()):
        assert row.example == f"example patient {n}" and row.why_chosen == caption
        assert f"Example patient {n}: {caption} Model: {row.predicted_class} (" in page


def test_report_images_are_embedded_pngs(report_file):
    from PIL import Image

    page = report_file.read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    embedded = DATA_URI.findall(page)
    assert len(sources) == len(embedded) >= 3 * 2 + 1 + 6  # every <img> is a data URI
    for data in embedded:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.verify()
        assert image.format == "PNG"
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the report must not need the network"


def test_report_never_shows_patient_identifiers(report_file, trained_store):
    from painml.jobs.train import load_dataset

    page = DATA_URI.sub('src=""', report_file.read_text(encoding="utf-8"))
    ids = set(load_dataset(trained_store.config).records.frame["patient_id"].astype(str))
    assert not ids & set(re.findall(r"[\w-]+", page))


def test_training_hands_its_objects_to_the_report(mlflow_store, monkeypatch):
    """Training explains and reports from what it holds: one split, nothing rebuilt from the run."""
    import mlflow

    from painml.config import load_config
    from painml.jobs import train

    cfg = load_config(REPO / "configs" / "smoke.yaml")
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"n": 800}),
            "models": tuple(m.model_copy(update={"n_estimators": 15}) if m.family == "gbm" else m for m in cfg.models),
        }
    )
    splits = []
    split_rows = train.split_rows
    monkeypatch.setattr(train, "split_rows", lambda y, c: splits.append(1) or split_rows(y, c))

    def no_rebuild(*args, **kwargs):
        raise AssertionError("training must not rebuild the report's inputs from the run")

    monkeypatch.setattr(report_job, "inputs_from_run", no_rebuild)
    monkeypatch.setattr(report_job, "load_data", no_rebuild)
    result = train.run_training(cfg, log_models=False)
    assert splits == [1]
    assert result.report == "report/report.html"
    client = mlflow.MlflowClient()
    shap_files = {a.path for a in client.list_artifacts(result.run_id, "shap")}
    for c in cfg.classes:
        assert f"shap/beeswarm_{c}.png" in shap_files
    assert {a.path for a in client.list_artifacts(result.run_id, "report")} == {"report/report.html"}
    page = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="report/report.html"))
    assert all(f'id="{key}"' in page.read_text(encoding="utf-8") for key in render.SECTIONS)


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


# Added to a copy of the page only: after load, the title says whether every image decoded.
_IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((img) => !img.complete || img.naturalWidth === 0).length;
  document.title = `images:${images.length} broken:${broken}`;
});
</script>"""


def test_report_renders_in_headless_chromium(report_file, tmp_path):
    from PIL import Image, ImageStat

    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "headless browser test skipped: no chromium on PATH (CI installs Debian's chromium in .ci/run; "
            "locally: apt-get install -y chromium)"
        )
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    screenshot = tmp_path / "report.png"
    shot = subprocess.run(
        [*flags, "--window-size=1280,2400", f"--screenshot={screenshot}", report_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.exists(), shot.stderr[-2000:]
    console = [
        line
        for line in shot.stderr.splitlines()
        if "CONSOLE" in line or "Failed to load resource" in line or "Uncaught" in line or "Not allowed to load" in line
    ]
    assert not console, console
    image = Image.open(screenshot).convert("RGB")
    assert image.size[0] >= 1000
    assert max(ImageStat.Stat(image).stddev) > 10, "the screenshot is blank"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50, "the screenshot has almost no content"

    probe = tmp_path / "probe.html"
    probe.write_text(
        report_file.read_text(encoding="utf-8").replace("</body>", _IMAGE_PROBE + "</body>"), encoding="utf-8"
    )
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    title = re.search(r"<title>images:(\d+) broken:(\d+)</title>", dom.stdout)
    assert title, dom.stderr[-2000:]
    assert int(title.group(1)) == len(DATA_URI.findall(report_file.read_text(encoding="utf-8")))
    assert int(title.group(2)) == 0, "some images did not render"


def test_report_command_takes_the_printed_prefix_and_writes_beside_the_training_report(cv_run, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from painml.cli.main import app

    monkeypatch.chdir(tmp_path)  # not where training ran: the report still goes beside the training report
    before = cv_run.trained.stat().st_mtime_ns
    runner = CliRunner()
    done = runner.invoke(app, ["report", "--run", cv_run.result.run_id[:8], "--tracking-uri", cv_run.uri])
    assert done.exit_code == 0, done.output
    assert cv_run.trained.stat().st_mtime_ns > before and str(cv_run.trained.parent) in done.output.replace("\n", "")
    assert not list(tmp_path.glob("*.html")) and not (tmp_path / "outputs").exists()
    page = _text(cv_run.trained)
    assert "Two classes (" in page and "Three classes" not in page
    unknown = next(p for p in ("00000000", "ffffffff") if not cv_run.result.run_id.startswith(p))
    failed = runner.invoke(app, ["report", "--run", unknown, "--tracking-uri", cv_run.uri])
    assert failed.exit_code == 2 and "no run id starts with" in failed.output
    assert "Traceback" not in failed.output
