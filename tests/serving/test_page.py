"""The page at ``/``: generated from the column table, offline, and in a real headless browser the same answer
as ``POST /predict``."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from importlib import resources

import pytest
from fastapi.testclient import TestClient

from painml.record.columns import BLOCKS, BY_NAME, FEATURE_COLUMNS
from painml.serving.http import create_app
from painml.serving.page import STATIC, form_blocks

EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|https?://(?!www\.w3\.org)"""
)


def test_the_form_is_the_column_table_grouped_by_block():
    blocks = form_blocks()
    assert [b["key"] for b in blocks] == [b for b in BLOCKS if b != "identification"]
    names = [f["name"] for b in blocks for f in b["fields"]]
    assert sorted(names) == sorted(FEATURE_COLUMNS) and len(names) == len(set(names))
    for field in (f for b in blocks for f in b["fields"]):
        column = BY_NAME[field["name"]]
        if column.kind == "category":
            assert [v for v, _ in field["options"]] == list(column.allowed)
        elif column.kind == "binary":
            assert [v for v, _ in field["options"]] == [1, 0]
        else:
            assert (field["low"], field["high"]) == (column.low, column.high)


def test_the_page_needs_nothing_from_the_network():
    folder = resources.files("painml.serving")
    texts = {name: folder.joinpath("static", name).read_text(encoding="utf-8") for name in STATIC}
    texts |= {
        name: folder.joinpath("templates", name).read_text(encoding="utf-8") for name in ("page.html", "docs.html")
    }
    for name, text in texts.items():
        assert not EXTERNAL.search(text), name


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served.predictor)) as c:
        yield c


def _form_record(record: dict) -> dict:
    """What the form can hold of a record: its feature columns that are recorded."""
    return {k: v for k, v in record.items() if k in FEATURE_COLUMNS and v is not None}


def test_page_docs_and_explain_answer_offline(client, served):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert all(f'name="{c}"' in page.text for c in FEATURE_COLUMNS)
    for name, kind in STATIC.items():
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"] == kind
    assert client.get("/static/nothing.js").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/predict" in docs.text and "/explain" in docs.text
    assert all(f"<code>{c}</code>" in docs.text for c in FEATURE_COLUMNS)
    assert not EXTERNAL.search(docs.text) and "swagger" not in docs.text.lower()

    record = _form_record(served.records[0])
    why = client.post("/explain", json=record).json()
    predicted = client.post("/predict", json=record).json()
    w = why["waterfall"]
    assert w["class_name"] == predicted["predicted_class"]
    assert w["probability"] == pytest.approx(predicted[f"p_{w['class_name']}"], abs=1e-9)
    assert w["base"] + sum(b["value"] for b in w["bars"]) == pytest.approx(w["total"], abs=1e-9)
    bad = client.post("/explain", json={"age": "old"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "age"
    assert client.post("/explain", content=b"[1, 2]", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/explain", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    hostile = {b"[" * 50_000 + b"]" * 50_000: 400, b'{"age": 1e400}': 422, b'{"age": 50, "age": 60}': 400}
    for body, status in hostile.items():
        answer = client.post("/explain", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == status and answer.json()["detail"], body[:20]


# --------------------------------------------------------------------------- headless Chromium


def _chromium() -> str | None:
    return next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p),
        None,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket: commands and the events seen."""

    def __init__(self, url: str):
        import websocket

        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > end:
                raise TimeoutError(expression)
            time.sleep(0.1)


@pytest.fixture
def browser_page(served, tmp_path):
    """The app on a local port and one headless Chromium page attached over the DevTools protocol."""
    import httpx
    import uvicorn

    chromium = _chromium()
    if chromium is None:
        pytest.skip("headless browser test skipped: no chromium on PATH (Debian: apt-get install -y chromium)")
    pytest.importorskip("websocket", reason="the browser test drives Chromium with websocket-client (dev extra)")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(served.predictor), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1400,1600", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        end = time.monotonic() + 60
        active = profile / "DevToolsActivePort"
        while not (active.exists() and active.read_text().strip()) or not server.started:
            if time.monotonic() > end:
                raise TimeoutError("chromium or the server did not start")
            time.sleep(0.1)
        debug_port = int(active.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{debug_port}/json/list", timeout=30).json()
        page = next(t for t in targets if t["type"] == "page")
        tools = _DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Runtime", "Log", "Page", "Network"):
            tools.send(f"{domain}.enable")
        yield tools, f"http://127.0.0.1:{port}"
        tools.ws.close()
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        server.should_exit = True
        thread.join(timeout=30)


def _problems(events: list[dict]) -> list[str]:
    found = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(str(params["exceptionDetails"]))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            found.append(str(params.get("args")))
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            found.append(params["entry"]["text"])
    return found


@pytest.mark.slow
def test_a_filled_form_answers_as_the_api_in_headless_chromium(browser_page, served, tmp_path):
    import httpx

    tools, base = browser_page
    tools.send("Page.navigate", url=base + "/")
    tools.wait_for("document.readyState === 'complete' && !!document.getElementById('record')")
    record = _form_record(served.records[3])
    assert len(record) > 20
    as_chosen = {k: int(v) if isinstance(v, bool) else v for k, v in record.items()}  # yes/no: the option's 1 or 0
    filled = tools.evaluate(
        "(() => { const r = " + json.dumps(as_chosen) + "; let n = 0;"
        " for (const [k, v] of Object.entries(r)) { const f = document.querySelector(`[name=${k}]`);"
        " f.value = String(v); if (f.value !== String(v)) throw new Error(`${k} cannot hold ${v}`); n++; }"
        " document.getElementById('record').requestSubmit(); return n; })()"
    )
    assert filled == len(record)
    tools.wait_for("document.body.dataset.state === 'done' || document.body.dataset.state === 'error'")
    assert tools.evaluate("document.body.dataset.state") == "done", tools.evaluate(
        "document.getElementById('status').textContent"
    )
    shown = tools.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#probabilities tr')]"
        ".map(r => [r.dataset.class, Number(r.dataset.p)]))"
    )
    api = httpx.post(base + "/predict", json=record, timeout=30).json()  # as a client sends it: true / false
    assert shown == {c: api[f"p_{c}"] for c in served.predictor.classes}
    text = tools.evaluate("document.getElementById('result').innerText")
    best = api["predicted_class"]
    assert f"{100 * api['p_' + best]:.1f}%" in text
    assert "Prediction set" in text and "DN4" in text and "painDETECT" in text
    assert tools.evaluate("document.querySelectorAll('#waterfall svg rect').length") >= 10
    assert tools.evaluate("document.querySelectorAll('#reasons li, #absences li').length") >= 1
    assert tools.evaluate("document.querySelectorAll('#what-if li').length") >= 1

    shot = base64.b64decode(tools.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    (tmp_path / "page.png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    requested = [e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(u.startswith(base) or u.startswith("data:") for u in requested), requested
    assert not _problems(tools.events), _problems(tools.events)

    tools.send("Page.navigate", url=base + "/docs")
    tools.wait_for("document.readyState === 'complete' && document.body.innerText.includes('/predict')")
    assert not _problems(tools.events)
