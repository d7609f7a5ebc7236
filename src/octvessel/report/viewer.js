(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message)); });
  var cerr = console.error.bind(console);
  console.error = function () { errors.push([].slice.call(arguments).join(" ")); cerr.apply(null, arguments); };
  var D = JSON.parse(document.getElementById("ov-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var EW = 420, EH = Math.round(EW * D.extent_mm.height / D.extent_mm.width);
  var BW = 560, BH = Math.round(BW * D.extent_mm.depth / D.extent_mm.width);
  var COLORS = ["#ffd400", "#00e5ff", "#ff4fd8", "#7CFC00", "#ff8c00", "#9b8cff", "#ffffff"];
  var en = $("ov-enface"), bs = $("ov-bscan"), ec = en.getContext("2d"), bc = bs.getContext("2d");
  en.width = EW; en.height = EH; bs.width = BW; bs.height = BH;
  var row = Math.floor(D.n / 2), shown = {}, imgs = [], enImgs = {}, ovImgs = {};
  var names = Object.keys(D.surfaces);
  function load(src) { var i = new Image(); i.src = src; return i; }
  D.bscans.forEach(function (s) { imgs.push(load(s)); });
  Object.keys(D.enfaces).forEach(function (k) { enImgs[k] = load(D.enfaces[k]); });
  Object.keys(D.overlays).forEach(function (k) { ovImgs[k] = load(D.overlays[k]); });
  var fs = $("ov-surfaces");
  names.forEach(function (nm, i) {
    shown[nm] = true;
    var l = document.createElement("label"), c = document.createElement("input");
    c.type = "checkbox"; c.checked = true; c.id = "ov-s-" + nm;
    c.addEventListener("change", function () { shown[nm] = c.checked; drawB(); });
    l.appendChild(c);
    l.appendChild(document.createTextNode(" " + nm + " "));
    l.style.color = "#000"; l.style.borderBottom = "3px solid " + COLORS[i % COLORS.length];
    fs.appendChild(l);
  });
  if (!names.length) fs.hidden = true;
  var ul = $("ov-warnings");
  (D.warnings.length ? D.warnings : ["none"]).forEach(function (w) {
    var li = document.createElement("li"); li.textContent = w;
    if (D.warnings.length) li.className = "ov-warn"; ul.appendChild(li);
  });
  var slider = $("ov-row"); slider.max = D.n - 1;
  function drawE() {
    ec.clearRect(0, 0, EW, EH);
    var v = $("ov-variant").value, im = enImgs[v], ov = ovImgs[v];
    if (im && im.complete) ec.drawImage(im, 0, 0, EW, EH);
    if (ov && ov.complete) {
      ec.globalAlpha = $("ov-opacity").value / 100; ec.drawImage(ov, 0, 0, EW, EH); ec.globalAlpha = 1;
    }
    if (D.fovea) {
      var cy = (D.fovea[0] + 0.5) * EH / D.grid[0], cx = (D.fovea[1] + 0.5) * EW / D.grid[1];
      var pxmm = EW / D.extent_mm.width;
      ec.strokeStyle = "#00ff88"; ec.lineWidth = 1;
      [0.5, 1.5, 3].forEach(function (r) { ec.beginPath(); ec.arc(cx, cy, r * pxmm, 0, 2 * Math.PI); ec.stroke(); });
      for (var k = 0; k < 4; k++) {
        var a = Math.PI / 4 + k * Math.PI / 2;
        ec.beginPath(); ec.moveTo(cx + 0.5 * pxmm * Math.cos(a), cy + 0.5 * pxmm * Math.sin(a));
        ec.lineTo(cx + 3 * pxmm * Math.cos(a), cy + 3 * pxmm * Math.sin(a)); ec.stroke();
      }
    }
    var y = (row + 0.5) * EH / D.n;
    ec.strokeStyle = "#00ff00"; ec.lineWidth = 2;
    ec.beginPath(); ec.moveTo(0, y); ec.lineTo(EW, y); ec.stroke();
  }
  function path(s, fx, fy) {
    var started = false; bc.beginPath();
    for (var x = 0; x < s.length; x++) {
      if (s[x] === null) { started = false; continue; }
      if (started) bc.lineTo((x + 0.5) * fx, s[x] * fy); else { bc.moveTo((x + 0.5) * fx, s[x] * fy); started = true; }
    }
  }
  function drawB() {
    var fx = BW / D.bscan_px[0], fy = BH / D.bscan_px[1], im = imgs[row];
    bc.fillStyle = "#000"; bc.fillRect(0, 0, BW, BH);
    if (im && im.complete) bc.drawImage(im, 0, 0, BW, BH);
    var sl = D.slabs[$("ov-variant").value];
    if (sl) {
      var edge = function (nm, v) { return nm === "top" ? 0 : nm === "bottom" ? D.bscan_px[1] : (D.surfaces[nm] ? D.surfaces[nm][row][v] : null); };
      bc.fillStyle = "rgba(80,160,255,0.28)";
      for (var x = 0; x < D.bscan_px[0]; x++) {
        var t = edge(sl[0], x), b = edge(sl[1], x);
        if (t === null || b === null) continue;
        bc.fillRect(x * fx, t * fy, fx + 0.5, (b - t) * fy);
      }
    }
    names.forEach(function (nm, i) {
      if (!shown[nm]) return;
      bc.strokeStyle = COLORS[i % COLORS.length]; bc.lineWidth = 1.5;
      path(D.surfaces[nm][row], fx, fy); bc.stroke();
    });
    var ves = D.vessels[$("ov-variant").value];
    if (ves) {
      bc.fillStyle = "#ff2020";
      ves[row].forEach(function (c) { bc.fillRect(c * fx, 0, Math.max(1, fx), 8); });
    }
    $("ov-rowlabel").textContent = "B-scan " + (row + 1) + " of " + D.n +
      " (" + ((row + 0.5) * D.slow_mm).toFixed(2) + " mm)";
  }
  function select(r) {
    row = Math.max(0, Math.min(D.n - 1, r)); slider.value = row; drawB(); drawE();
  }
  slider.addEventListener("input", function () { select(parseInt(slider.value, 10)); });
  $("ov-variant").addEventListener("change", function () { drawE(); drawB(); });
  $("ov-opacity").addEventListener("input", drawE);
  function rowAt(ev) { var r = en.getBoundingClientRect(); return Math.floor((ev.clientY - r.top) / r.height * D.n); }
  en.addEventListener("click", function (ev) { select(rowAt(ev)); });
  en.addEventListener("mousemove", function (ev) { select(rowAt(ev)); });
  en.addEventListener("keydown", function (ev) {
    var step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[ev.key];
    if (step) { select(row + step); ev.preventDefault(); }
  });
  function ready(cb) {
    var vals = function (o) { return Object.keys(o).map(function (k) { return o[k]; }); };
    var all = imgs.concat(vals(enImgs), vals(ovImgs)), left = all.length;
    var one = function () { if (--left === 0) cb(); };
    if (!left) { cb(); return; }
    all.forEach(function (i) {
      if (i.complete && i.naturalWidth) one();
      else { i.addEventListener("load", one); i.addEventListener("error", function () { errors.push("image failed to load"); one(); }); }
    });
  }
  function sum(c) {
    var d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, h = 0;
    for (var i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0;
    return h;
  }
  window.addEventListener("unhandledrejection", function (e) { errors.push(String(e.reason)); });
  ready(function () {
    select(row);
    if (location.hash !== "#selftest") return;
    // Self-test: drive the page's own controls, time each switch, check the drawing changed.
    var res = { n: D.n, times_ms: [], changed: 0, steps: 0, errors: errors };
    try {
    var before = sum(bs);
    for (var k = 0; k < Math.min(D.n - 1, 40); k++) {
      var t0 = performance.now();
      slider.value = (k * 7 + 3) % D.n; slider.dispatchEvent(new Event("input"));
      bc.getImageData(0, 0, 1, 1);  // wait until the drawing is rasterised
      res.times_ms.push(performance.now() - t0);
      var s = sum(bs); res.steps++; if (s !== before) res.changed++; before = s;
    }
    en.focus(); var r0 = row;
    var t1 = performance.now();
    en.dispatchEvent(new KeyboardEvent("keydown", { key: r0 > 0 ? "ArrowUp" : "ArrowDown", bubbles: true }));
    bc.getImageData(0, 0, 1, 1);
    res.times_ms.push(performance.now() - t1);
    res.key_moved = row !== r0;
    var rect = en.getBoundingClientRect();
    en.dispatchEvent(new MouseEvent("click", { clientX: rect.left + 5, clientY: rect.top + rect.height * 0.4, bubbles: true }));
    res.click_row = row;
    res.max_ms = Math.max.apply(null, res.times_ms);
    res.enface_sum = sum(en);
    } catch (e) { errors.push("selftest: " + e); }
    var pre = $("ov-selftest"); pre.textContent = JSON.stringify(res); pre.hidden = false;
    console.log("OV-SELFTEST " + pre.textContent);
  });
})();
