"use strict";
// The page to try a patient: the form becomes one JSON record, sent to POST /predict (the API's own answer)
// and POST /explain (waterfall, what recording a missing finding would change). No library, no network beyond
// this server.
(function () {
  const settings = JSON.parse(document.getElementById("settings").textContent);
  const form = document.getElementById("record");
  const status = document.getElementById("status");
  const result = document.getElementById("result");

  function record() {
    const out = {};
    for (const field of form.querySelectorAll("select, input[type=number]")) {
      if (field.value === "") continue;
      const kind = field.dataset.kind;
      out[field.name] = kind === "category" ? field.value : Number(field.value);
    }
    return out;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function item(list, text) {
    const li = document.createElement("li");
    li.textContent = text;
    list.appendChild(li);
  }

  function percent(p) {
    return (100 * p).toFixed(1) + "%";
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      const problems = (answer.problems || []).map((p) => `${p.field || "record"}: ${p.problem}`);
      throw new Error([answer.detail || response.statusText, ...problems].join("; "));
    }
    return answer;
  }

  function showProbabilities(prediction) {
    const body = clear(document.querySelector("#probabilities tbody"));
    for (const c of settings.classes) {
      const p = prediction["p_" + c];
      const row = document.createElement("tr");
      row.dataset.class = c;
      row.dataset.p = String(p);
      if (c === prediction.predicted_class) row.className = "best";
      const name = document.createElement("td");
      name.textContent = c;
      const value = document.createElement("td");
      value.className = "p";
      value.textContent = percent(p);
      const track = document.createElement("td");
      track.className = "track";
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = (100 * p).toFixed(1) + "%";
      bar.style.background = settings.colours[c];
      track.appendChild(bar);
      row.append(name, value, track);
      body.appendChild(row);
    }
    const members = prediction.prediction_set || [];
    const level = Math.round(100 * settings.confidence) + "%";
    document.getElementById("prediction-set").textContent =
      members.length === 1
        ? `Prediction set (${level}): ${members[0]} only: the model rules out the other classes.`
        : `Prediction set (${level}): ${members.join(" or ")}: the model cannot rule out any of these.`;
  }

  function showScores(prediction) {
    const list = clear(document.getElementById("scores"));
    const dn4 = prediction.dn4;
    item(list, dn4 === null || dn4 === undefined
      ? "DN4: not computable (its interview and examination items were not all recorded)."
      : `DN4 ${dn4}/10: ${dn4 >= settings.dn4_positive ? "positive" : "negative"} ` +
        `(${settings.dn4_positive} or more suggests a neuropathic component).`);
    const pd = prediction.paindetect;
    let band = "";
    if (pd !== null && pd !== undefined) {
      band = pd <= settings.paindetect_negative_max ? "negative (a neuropathic component is unlikely)"
        : pd >= settings.paindetect_positive ? "positive (a neuropathic component is likely)"
        : "unclear (a neuropathic component may be present)";
    }
    item(list, band === ""
      ? "painDETECT: not computable (the questionnaire was not filled in)."
      : `painDETECT ${pd}/38: ${band}; bands: up to ${settings.paindetect_negative_max} negative, ` +
        `${settings.paindetect_positive} or more positive.`);
    const grade = prediction.neupsig_grade;
    item(list, grade === null || grade === undefined
      ? "NeuPSIG grade: not computable from this record."
      : `NeuPSIG grading: ${settings.neupsig_grades[grade]} neuropathic pain (from history, examination and tests).`);
    const flags = prediction.flags || [];
    document.getElementById("flags").textContent = flags.length
      ? "Unlike the training data: " + flags.join("; ") + "." : "";
  }

  function showWhy(why) {
    const reasons = clear(document.getElementById("reasons"));
    for (const line of why.reasons) item(reasons, line);
    const absences = clear(document.getElementById("absences"));
    for (const line of why.absences) item(absences, line);
    document.getElementById("absences-block").hidden = why.absences.length === 0;
    const whatIf = clear(document.getElementById("what-if"));
    for (const change of why.what_if) item(whatIf, change.sentence[0].toUpperCase() + change.sentence.slice(1) + ".");
    if (why.what_if.length === 0) item(whatIf, "No missing finding would move a probability by a percentage point or more.");
    drawWaterfall(why.waterfall);
  }

  function svg(name, attributes, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawWaterfall(w) {
    const holder = clear(document.getElementById("waterfall"));
    const bars = w.bars;
    const labelWidth = 250, plotWidth = 330, rowHeight = 20, top = 34, width = labelWidth + plotWidth + 60;
    const height = top + rowHeight * bars.length + 40;
    let ends = [w.base], position = w.base;
    for (const bar of bars) { position += bar.value; ends.push(position); }
    const low = Math.min(...ends), high = Math.max(...ends), pad = 0.08 * (high - low || 1);
    const x = (v) => labelWidth + ((v - (low - pad)) / (high - low + 2 * pad)) * plotWidth;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `waterfall of the score of ${w.class_name}` });
    const defs = svg("defs", {});
    const hatch = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" });
    hatch.appendChild(svg("rect", { width: 6, height: 6, fill: "#ddd" }));
    hatch.appendChild(svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#777", "stroke-width": 3 }));
    defs.appendChild(hatch);
    root.appendChild(defs);
    root.appendChild(svg("text", { x: 4, y: 14, "font-weight": "bold" },
      `Why ${w.class_name}: probability ${percent(w.probability)}`));
    root.appendChild(svg("line", { x1: x(w.base), x2: x(w.base), y1: top - 6, y2: height - 34, stroke: "#555",
      "stroke-dasharray": "4 3" }));
    root.appendChild(svg("line", { x1: x(w.total), x2: x(w.total), y1: top - 6, y2: height - 34, stroke: "#000" }));
    const anchor = (v) => (x(v) < labelWidth + 0.3 * plotWidth ? "start" : x(v) > labelWidth + 0.7 * plotWidth ? "end" : "middle");
    root.appendChild(svg("text", { x: x(w.base), y: top - 10, "text-anchor": anchor(w.base), fill: "#555" },
      `average patient: score ${w.base.toFixed(2)}, probability ${percent(w.base_probability)}`));
    let left = w.base;
    bars.forEach((bar, i) => {
      const y = top + i * rowHeight;
      const a = x(left), b = x(left + bar.value);
      const colour = bar.value >= 0 ? "#d62728" : "#1f77b4";
      root.appendChild(svg("text", { x: labelWidth - 6, y: y + 13, "text-anchor": "end" }, bar.label));
      root.appendChild(svg("rect", { x: Math.min(a, b), y: y + 3, width: Math.max(1, Math.abs(b - a)), height: 14,
        fill: bar.missing ? "url(#hatch)" : colour, stroke: colour, "fill-opacity": bar.group ? 0.5 : 1 }));
      root.appendChild(svg("text", { x: Math.max(a, b) + 4, y: y + 13 },
        (bar.value >= 0 ? "+" : "") + bar.value.toFixed(2)));
      left += bar.value;
    });
    root.appendChild(svg("text", { x: x(w.total), y: height - 20, "text-anchor": anchor(w.total) },
      `this patient: score ${w.total.toFixed(2)}, probability ${percent(w.probability)}`));
    root.appendChild(svg("text", { x: 4, y: height - 4, fill: "#555" },
      `score of ${w.class_name} (softmax logit); red: towards, blue: away from ${w.class_name}`));
    holder.appendChild(root);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const patient = record();
    document.body.dataset.state = "busy";
    status.className = "";
    status.textContent = "Predicting…";
    try {
      const [prediction, why] = await Promise.all([post("/predict", patient), post("/explain", patient)]);
      showProbabilities(prediction);
      showScores(prediction);
      showWhy(why);
      const n = Object.keys(patient).length;
      status.textContent = `Prediction for the record as filled in (${n} finding${n === 1 ? "" : "s"} recorded): ` +
        `${prediction.predicted_class}.`;
      result.hidden = false;
      document.body.dataset.state = "done";
    } catch (error) {
      status.className = "error";
      status.textContent = "The model could not score this record: " + error.message;
      result.hidden = true;
      document.body.dataset.state = "error";
    }
  });
  form.addEventListener("reset", () => {
    result.hidden = true;
    status.className = "";
    status.textContent = "Fill in the form and press Predict.";
  });
})();
