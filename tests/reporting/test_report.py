"""The reviewer report: every section, images embedded, no identifiers, and a real headless browser."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from painml.jobs import report as report_job
from painml.reporting import render

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
