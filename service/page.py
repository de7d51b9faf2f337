"""The page at `/`: drop (or choose) an image, see score, verdict and overlay.

Inline (no static folder), so it ships with the package without package-data configuration. It holds
no data: it calls /v1/predict from the browser, sending the API key typed into it, if any.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>anomaly: score an image</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 900px; margin: 2rem auto; padding: 0 1rem; }
  #drop { border: 2px dashed #888; border-radius: 8px; padding: 2rem; text-align: center; cursor: pointer; }
  #drop.over { background: #eef; }
  .ok { color: #1a7f37; } .bad { color: #cf222e; } .error { color: #cf222e; white-space: pre-wrap; }
  #images { display: flex; gap: 1rem; flex-wrap: wrap; margin-top: 1rem; }
  #images img { max-width: 420px; image-rendering: pixelated; border: 1px solid #ccc; }
  dl { display: grid; grid-template-columns: max-content auto; gap: .25rem 1rem; }
</style>
</head>
<body>
<h1>Is this image anomalous?</h1>
<p>Drop an image below or choose a file. <label>API key (if the service needs one):
  <input id="key" type="password" autocomplete="off"></label></p>
<div id="drop">Drop an image here, or <label><u>choose one</u>
  <input id="file" type="file" accept="image/*" hidden></label></div>
<p id="status" aria-live="polite"></p>
<dl id="result" hidden>
  <dt>file</dt><dd id="filename"></dd>
  <dt>verdict</dt><dd id="verdict"></dd>
  <dt>score</dt><dd id="score"></dd>
  <dt>normalised score</dt><dd id="normalised"></dd>
  <dt>threshold</dt><dd id="threshold"></dd>
  <dt>regions</dt><dd id="regions"></dd>
  <dt>model</dt><dd id="model"></dd>
</dl>
<div id="images"><img id="original" alt="original" hidden><img id="overlay" alt="heatmap overlay" hidden></div>
<script>
const $ = (id) => document.getElementById(id);
async function score(file) {
  $("status").textContent = "scoring " + file.name + " ...";
  $("status").className = "";
  $("result").hidden = true; $("overlay").hidden = true;
  $("original").src = URL.createObjectURL(file); $("original").hidden = false;
  const form = new FormData();
  form.append("files", file, file.name);
  const headers = $("key").value ? {"X-API-Key": $("key").value} : {};
  try {
    const response = await fetch("v1/predict?heatmap=png", {method: "POST", body: form, headers});
    const body = await response.json();
    const item = response.ok ? body.results[0] : null;
    const error = response.ok ? item.error : body;
    if (error) throw new Error(error.detail || JSON.stringify(error));
    $("filename").textContent = item.filename + " (" + item.width + " x " + item.height + ")";
    $("verdict").textContent = item.is_anomalous ? "anomalous" : "normal";
    $("verdict").className = item.is_anomalous ? "bad" : "ok";
    $("score").textContent = item.score.toPrecision(4);
    $("normalised").textContent = item.normalised_score.toFixed(3);
    $("threshold").textContent = item.threshold.toPrecision(4);
    $("regions").textContent = item.regions.length;
    $("model").textContent = [body.model.name || body.model.uri, body.model.version].filter(Boolean).join(" v");
    $("overlay").src = "data:image/png;base64," + item.heatmap.data;
    $("overlay").hidden = false; $("result").hidden = false;
    $("status").textContent = "done";
  } catch (e) {
    $("status").textContent = "error: " + e.message;
    $("status").className = "error";
  }
}
$("file").addEventListener("change", (e) => e.target.files[0] && score(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) score(e.dataTransfer.files[0]);
});
</script>
</body>
</html>
"""
