// The pair picker, the filters and the URL state of the report: no server, no libraries.
// The data is the JSON in #data (sandbox/report/pagedata.py documents its shape).
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("data").textContent);
  var WORDS = {o: "ok", d: "differs", f: "fails", n: "n/a", "-": "none"};
  var $ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var byId = function (id) { return document.getElementById(id); };
  var NC = DATA.cells.length;
  var CELL = {};  // id -> index
  DATA.cells.forEach(function (c, i) { CELL[c[0]] = i; });

  function esc(text) {
    return String(text).replace(/[&<>"]/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[ch];
    });
  }
  function label(i) { return DATA.cells[i][1]; }
  // "TF 2.18.1" for a TensorFlow cell; a runtime cell's label names its runtime ("LiteRT 1.2.0")
  function named(i) { return (DATA.cells[i][3] || "tensorflow") === "tensorflow" ? "TF " + label(i) : label(i); }

  // -- the state in the URL fragment: #from=..&format=..&to=..&loader=..&f=..&s=..&q=..
  var KEYS = ["from", "format", "to", "loader", "f", "s", "q"];
  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, "")), state = {};
    KEYS.forEach(function (k) { if (params.has(k)) { state[k] = params.get(k); } });
    return state;
  }
  function writeHash() {
    var params = new URLSearchParams(), s = current();
    KEYS.forEach(function (k) { if (s[k]) { params.set(k, s[k]); } });
    var hash = "#" + params.toString();
    if (hash !== location.hash) { history.replaceState(null, "", hash); }
  }
  function current() {
    return {from: byId("p-from").value, format: byId("p-format").value, to: byId("p-to").value,
            loader: byId("p-loader").value, f: byId("f-format").value, s: byId("f-status").value,
            q: byId("f-text").value.trim()};
  }

  // -- the picker
  function gridOf(format, loader) {
    for (var i = 0; i < DATA.grids.length; i += 1) {
      if (DATA.grids[i].f === format && DATA.grids[i].l === loader) { return i; }
    }
    return -1;
  }
  function fillLoaders(wanted) {
    var select = byId("p-loader"), format = byId("p-format").value, found = [];
    DATA.grids.forEach(function (g) { if (g.f === format) { found.push(g.l); } });
    select.innerHTML = found.map(function (l) {
      return "<option value=\"" + esc(l) + "\">" + esc(l) + "</option>";
    }).join("");
    if (wanted && found.indexOf(wanted) >= 0) { select.value = wanted; }
  }
  function verdictAt(gi, p, c) {
    var g = DATA.grids[gi], row = g.p.indexOf(p);
    return row < 0 ? "-" : g.v.charAt(row * NC + c);
  }
  function newestProducer(gi, c) {
    var g = DATA.grids[gi];
    for (var r = g.p.length - 1; r >= 0; r -= 1) { if (g.v.charAt(r * NC + c) === "o") { return g.p[r]; } }
    return -1;
  }
  function oldestConsumer(gi, p) {
    for (var c = 0; c < NC; c += 1) { if (verdictAt(gi, p, c) === "o") { return c; } }
    return -1;
  }
  function sentence(v, p, c, format, loader) {
    var saved = "A <code>" + esc(format) + "</code> model saved with " + esc(named(p));
    var where = " in " + esc(named(c)) + " with <code>" + esc(loader) + "</code>";
    return {o: saved + " loads" + where + ", and every probe gives the producer's outputs.",
            d: saved + " loads" + where + ", but its outputs differ from the producer's.",
            f: saved + " fails to load or run" + where + ".",
            n: esc(named(c)) + " has no <code>" + esc(loader) + "</code> loader for this format.",
            "-": esc(named(p)) + " wrote no <code>" + esc(format) + "</code> model that " +
                 esc(named(c)) + " tried with <code>" + esc(loader) + "</code>."}[v];
  }
  function problemsHtml(list) {
    var bySig = {}, order = [], predicted = {};
    list.forEach(function (b) {
      if (!bySig[b[2]]) { bySig[b[2]] = []; order.push(b[2]); }
      bySig[b[2]].push(b);
      b[4].forEach(function (n) { predicted[n] = true; });
    });
    var names = Object.keys(predicted).sort();
    return order.map(function (s) {
      var items = bySig[s], sig = DATA.sigs[s], probes = [], errors = [];
      items.forEach(function (b) {
        probes.push(b[0]);
        if (errors.indexOf(b[3]) < 0) { errors.push(b[3]); }
      });
      var more = errors.slice(1, 6).map(function (e) { return "<pre class=\"error\">" + esc(DATA.errors[e]) + "</pre>"; });
      return "<div class=\"finding\"><h4><span class=\"badge v-" + (sig[1] === "differs" ? "differs" : "fails") +
        "\">" + esc(sig[1]) + "</span> " + esc(sig[0]) + "</h4><p class=\"muted\">" + items.length + " probe" +
        (items.length === 1 ? "" : "s") + ": " + esc(probes.join(", ")) + "</p>" +
        "<pre class=\"error\">" + esc(DATA.errors[errors[0]]) + "</pre>" +
        (more.length ? "<details><summary>" + (errors.length - 1) + " more error text" + (errors.length > 2 ? "s" : "") +
          " of this finding</summary>" + more.join("") + "</details>" : "") + "</div>";
    }).join("") + (names.length ? "<p>The static check of these models against this consumer's op registry finds " +
      "missing: <code class=\"predicted\">" + esc(names.join(", ")) + "</code></p>" : "");
  }
  function answer() {
    var s = current(), p = CELL[s.from], c = CELL[s.to], gi = gridOf(s.format, s.loader), box = byId("answer");
    $("td.sel").forEach(function (td) { td.classList.remove("sel"); });
    if (gi < 0 || p === undefined || c === undefined) {
      box.innerHTML = "<p>No loads of this format with this loader.</p>";
      return;
    }
    var v = verdictAt(gi, p, c), g = DATA.grids[gi], row = g.p.indexOf(p);
    var bad = DATA.bad[gi + "," + p + "," + c] || [], n = row < 0 ? 0 : g.n[row * NC + c];
    var newest = newestProducer(gi, c), oldest = row < 0 ? -1 : oldestConsumer(gi, p);
    var counts = v === "f" || v === "d" ? " (" + bad.length + " of " + n + " loads)" : (n ? " (" + n + " loads)" : "");
    box.setAttribute("data-verdict", WORDS[v]);
    box.innerHTML = "<p class=\"verdict\"><span class=\"badge big v-" + WORDS[v].replace("/", "") + "\" id=\"verdict\">" +
      esc(WORDS[v]) + "</span> " + sentence(v, p, c, s.format, s.loader) + esc(counts) + "</p>" +
      problemsHtml(bad) +
      "<ul class=\"facts\"><li>Newest TF whose <code>" + esc(s.format) + "</code> models load in " + esc(named(c)) +
      ": <b id=\"newest\" data-cell=\"" + (newest < 0 ? "" : esc(DATA.cells[newest][0])) + "\">" +
      (newest < 0 ? "none" : esc(label(newest))) + "</b></li>" +
      "<li>Oldest TF that loads this model from " + esc(named(p)) + ": <b id=\"oldest\" data-cell=\"" +
      (oldest < 0 ? "" : esc(DATA.cells[oldest][0])) + "\">" + (oldest < 0 ? "none" : esc(label(oldest))) + "</b></li>" +
      "<li><a href=\"#grid-" + gi + "\">the grid of " + esc(s.format) + " / " + esc(s.loader) + "</a>; " +
      "<code>" + esc(s.from) + "</code> → <code>" + esc(s.to) + "</code></li></ul>";
    var table = byId("grid-" + gi);
    if (table && row >= 0) {
      var tr = table.querySelector("tbody").rows[row];
      if (tr && tr.cells[c + 1]) { tr.cells[c + 1].classList.add("sel"); }
    }
  }

  // -- filters over the summary, the grouped failures, the grids and the op table
  function filter() {
    var s = current(), text = s.q.toLowerCase(), shown = 0, total = 0;
    var inFormat = function (el) {
      return !s.f || (" " + (el.getAttribute("data-formats") || el.getAttribute("data-format")) + " ").indexOf(" " + s.f + " ") >= 0;
    };
    $(".grid-box, .fsum").forEach(function (el) { el.classList.toggle("hidden", !inFormat(el)); });
    $("tr.group, tr.op").forEach(function (tr) {
      var ok = inFormat(tr) && (!text || tr.textContent.toLowerCase().indexOf(text) >= 0);
      tr.classList.toggle("hidden", !ok);
      if (tr.classList.contains("group")) { total += 1; shown += ok ? 1 : 0; }
    });
    byId("grids").classList.toggle("problems-only", s.s === "problems");
    byId("shown").textContent = shown + " of " + total + " findings shown";
  }

  function update() {
    filter();
    answer();
    writeHash();
  }

  function restore() {
    var st = readHash();
    if (st.from !== undefined && CELL[st.from] !== undefined) { byId("p-from").value = st.from; }
    if (st.to !== undefined && CELL[st.to] !== undefined) { byId("p-to").value = st.to; }
    if (st.format) { byId("p-format").value = st.format; }
    fillLoaders(st.loader);
    byId("f-format").value = st.f || "";
    byId("f-status").value = st.s || "";
    byId("f-text").value = st.q || "";
  }

  function pick(td) {
    var box = td.closest(".grid-box"), g = DATA.grids[+box.getAttribute("data-grid")];
    var row = td.parentNode.sectionRowIndex, col = td.cellIndex - 1;
    byId("p-from").value = DATA.cells[g.p[row]][0];
    byId("p-to").value = DATA.cells[col][0];
    byId("p-format").value = g.f;
    fillLoaders(g.l);
    update();
    byId("pick").scrollIntoView();
    byId("answer").focus({preventScroll: true});
  }

  function move(td, key) {
    var tr = td.parentNode, body = tr.parentNode, row = tr.sectionRowIndex, col = td.cellIndex;
    var step = {ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0]}[key];
    for (var r = row + step[0], c = col + step[1]; r >= 0 && r < body.rows.length && c >= 1 && c < tr.cells.length;
         r += step[0], c += step[1]) {
      var next = body.rows[r].cells[c];
      if (next && next.hasAttribute("tabindex")) { next.focus(); return; }
    }
  }

  function reset() {
    ["f-format", "f-status", "f-text"].forEach(function (id) { byId(id).value = ""; });
    update();
  }

  restore();
  byId("p-format").addEventListener("change", function () { fillLoaders(byId("p-loader").value); update(); });
  ["p-from", "p-to", "p-loader", "f-format", "f-status"].forEach(function (id) {
    byId(id).addEventListener("change", update);
  });
  byId("f-text").addEventListener("input", update);
  byId("f-reset").addEventListener("click", reset);
  byId("grids").addEventListener("click", function (ev) {
    var td = ev.target.closest("td[tabindex]");
    if (td) { pick(td); }
  });
  byId("grids").addEventListener("keydown", function (ev) {
    var td = ev.target.closest("td[tabindex]");
    if (!td) { return; }
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(td); }
    else if (/^Arrow/.test(ev.key)) { ev.preventDefault(); move(td, ev.key); }
  });
  window.addEventListener("hashchange", function () { restore(); filter(); answer(); });
  update();
}());
