// fashion-web page: sends an uploaded photo or a canvas drawing to /api/classify and shows the answer.
"use strict";

const CLASS_NAMES = JSON.parse(document.body.dataset.classNames);
const $ = (id) => document.getElementById(id);

function show(id, visible) { $(id).hidden = !visible; }

function percent(p) { return `${(100 * p).toFixed(1)}%`; }

function renderBars(probabilities, classId) {
  const list = $("bars");
  list.replaceChildren();
  probabilities.forEach((p, i) => {
    const row = document.createElement("li");
    row.className = i === classId ? "top" : "";
    const label = document.createElement("span");
    label.textContent = CLASS_NAMES[i];
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = percent(p);
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(p);
    row.append(label, track, value);
    list.append(row);
  });
}

function render(answer) {
  $("class-name").textContent = answer.class_name;
  $("probability").textContent = answer.probability == null ? "" : percent(answer.probability);
  $("model-version").textContent = answer.model_version;
  const has = Array.isArray(answer.probabilities);
  if (has) renderBars(answer.probabilities, answer.class_id);
  show("bars", has);
  show("no-probabilities", !has);
  show("result", true);
}

async function classify(body) {
  $("status").textContent = "Asking the model...";
  show("status", true);
  show("error", false);
  try {
    const response = await fetch("/api/classify", { method: "POST", body });
    const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
    render(answer);
    show("status", false);
  } catch (error) {
    show("result", false);
    show("status", false);
    $("error").textContent = error.message;
    show("error", true);
  }
}

function classifyFile(file) {
  if (!file) return;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.onload = () => preview.classList.toggle("small", preview.naturalWidth <= 64);
  preview.hidden = false;
  $("drop-hint").textContent = "Choose another image, or drop it here";
  const form = new FormData();
  form.append("image", file);
  classify(form);
}

// Upload: the file input and drag-and-drop.
$("file").addEventListener("change", (event) => classifyFile(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  classifyFile(event.dataTransfer.files[0]);
});

// Tabs.
function selectTab(name) {
  for (const tab of ["upload", "draw"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    show(tab, tab === name);
  }
}
$("tab-upload").addEventListener("click", () => selectTab("upload"));
$("tab-draw").addEventListener("click", () => selectTab("draw"));

// Drawing: white strokes on black, like Fashion-MNIST.
const canvas = $("canvas");
const pen = canvas.getContext("2d");
let drawing = false;
let drawn = false;
function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  drawn = false;
}
function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width,
          (event.clientY - box.top) * canvas.height / box.height];
}
canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  pen.beginPath();
  pen.moveTo(...point(event));
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  pen.lineTo(...point(event));
  pen.strokeStyle = "#fff";
  pen.lineWidth = 18;
  pen.lineCap = pen.lineJoin = "round";
  pen.stroke();
  drawn = true;
});
canvas.addEventListener("pointerup", () => { drawing = false; });
$("clear").addEventListener("click", clearCanvas);
$("classify-drawing").addEventListener("click", () => {
  if (!drawn) {
    $("error").textContent = "Draw a garment first.";
    show("error", true);
    return;
  }
  canvas.toBlob((blob) => {
    const form = new FormData();
    form.append("image", blob, "drawing.png");
    classify(form);
  }, "image/png");
});
clearCanvas();
