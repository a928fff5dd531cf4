// The pair picker, the filters and the URL state of the report: no server, no libraries.
// The data is the JSON in #data (sandbox/report/pagedata.py documents its shape); the verdict
// model is sandbox/report/verdict.py's, letter for letter.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("data").textContent);
  var WORDS = {o: "ok", d: "differs", f: "fails", g: "device-bound", h: "harness error", n: "n/a",
               x: "export failed", "-": "none", e: "another map's"};
  var SLUGS = {o: "ok", d: "differs", f: "fails", g: "device", h: "harness", n: "na", x: "export", "-": "none", e: "elsewhere"};
  var PRECEDENCE = "fdhogxne", APART = "gxh", TRIED = "odfgh";
  var $ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var byId = function (id) { return document.getElementById(id); };
  var NC = DATA.cells.length, NP = DATA.probes.length;
  var CELL = {}, PROBE = {};  // id -> index
  DATA.cells.forEach(function (c, i) { CELL[c[0]] = i; });
  DATA.probes.forEach(function (p, i) { PROBE[p[0]] = i; });

  function esc(text) {
    return String(text).replace(/[&<>"]/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[ch];
    });
  }
  function label(i) { return DATA.cells[i][1]; }
  function has(c, device) { return (" " + DATA.cells[c][3] + " ").indexOf(" " + device + " ") >= 0; }
  function list(names) { return names.map(esc).join(", "); }
  // "TF 2.18.1" for a TensorFlow cell; a runtime cell's label names its runtime ("LiteRT 1.2.0")
  function named(i) { return (DATA.cells[i][4] || "tensorflow") === "tensorflow" ? "TF " + label(i) : label(i); }

  // -- which probes count: the device-portable ones (default), every probe, or those ticked
  function ticked() { return $("#p-some input:checked").map(function (b) { return b.value; }); }
  function probesKey() {
    var mode = byId("p-probes").value;
    return mode === "some" ? ticked().join(",") || "none" : mode;
  }
  function chosen(c) {  // the positions of the probes that count for consumer c
    var mode = byId("p-probes").value, picked = mode === "some" ? ticked() : null, out = [];
    DATA.probes.forEach(function (p, i) {
      if (mode === "all" || (picked ? picked.indexOf(p[0]) >= 0 : !p[1] || has(c, p[1]))) { out.push(i); }
    });
    return out;
  }

  // -- squares: one letter per probe
  function lettersAt(gi, row, c) {
    var at = (row * NC + c) * NP;
    return DATA.grids[gi].s.slice(at, at + NP);
  }
  function square(gi, row, c) {
    var every = row < 0 ? "" : lettersAt(gi, row, c);
    var mine = chosen(c).map(function (i) { return every.charAt(i) || "-"; }).join("");
    var v = "-";
    for (var k = 0; k < PRECEDENCE.length; k += 1) {
      if (mine.indexOf(PRECEDENCE.charAt(k)) >= 0) { v = PRECEDENCE.charAt(k); break; }
    }
    var marks = APART.split("").filter(function (m) { return every.indexOf(m) >= 0 && m !== v; });
    var failed = mine.split("f").length - 1, tried = mine.split("").filter(function (x) { return TRIED.indexOf(x) >= 0; }).length;
    var text = {o: "ok", d: "≠", f: failed === tried ? "✗" : failed + "/" + tried, g: "dev", h: "bug", n: "n/a",
                x: "exp", "-": "", e: "↗"}[v];
    return {v: v, every: every, mine: mine, marks: marks, text: text, failed: failed, tried: tried,
            loads: v === "o" && mine.indexOf("g") < 0};
  }
  function gridOf(format, loader) {
    for (var i = 0; i < DATA.grids.length; i += 1) {
      if (DATA.grids[i].f === format && DATA.grids[i].l === loader) { return i; }
    }
    return -1;
  }
  function loadersOf(format) {
    return DATA.grids.filter(function (g) { return g.f === format; }).map(function (g) { return g.l; });
  }
  function fillLoaders(wanted) {
    var select = byId("p-loader"), found = loadersOf(byId("p-format").value);
    select.innerHTML = found.map(function (l) {
      return "<option value=\"" + esc(l) + "\">" + esc(l) + "</option>";
    }).join("");
    if (wanted && found.indexOf(wanted) >= 0) { select.value = wanted; }
  }
  function newestProducer(gi, c) {
    var g = DATA.grids[gi];
    for (var r = g.p.length - 1; r >= 0; r -= 1) { if (square(gi, r, c).loads) { return g.p[r]; } }
    return -1;
  }
  function oldestConsumer(gi, p) {
    var row = DATA.grids[gi].p.indexOf(p);
    for (var c = 0; row >= 0 && c < NC; c += 1) { if (square(gi, row, c).loads) { return c; } }
    return -1;
  }

  // -- the answer
  function probesWith(sq, c, letters) {  // the chosen probes whose outcome is one of `letters`
    var picked = chosen(c), out = [];
    sq.mine.split("").forEach(function (x, k) { if (letters.indexOf(x) >= 0) { out.push(DATA.probes[picked[k]][0]); } });
    return out;
  }
  function sentence(sq, p, c, format, loader) {
    var saved = "A <code>" + esc(format) + "</code> model saved with " + esc(named(p));
    var where = " in " + esc(named(c)) + " with <code>" + esc(loader) + "</code>";
    var all = sq.every.split("").filter(function (x) { return TRIED.indexOf(x) >= 0; }).length;
    var ok = sq.mine.split("o").length - 1;
    return {o: saved + " loads" + where + " for " + ok + " of " + all + " probe" + (all === 1 ? "" : "s") +
               (byId("p-probes").value === "some" && ok < all ? " (those you ticked)" : "") + ", with the producer's outputs",
            d: saved + " loads" + where + ", but the outputs of " + list(probesWith(sq, c, "d")) + " differ from the producer's",
            f: saved + " fails" + where + " for " + sq.failed + " of " + sq.tried + " probe" + (sq.tried === 1 ? "" : "s") +
               ": " + list(probesWith(sq, c, "f")),
            h: saved + where + ": sandbox's own code failed for " + list(probesWith(sq, c, "h")) +
               " (a harness error, not a finding: no verdict there)",
            g: saved + " does not run" + where + ": " + list(probesWith(sq, c, "g")) + " need" +
               (probesWith(sq, c, "g").length === 1 ? "s" : "") + " a device this consumer lacks",
            x: esc(named(p)) + " could not export <code>" + esc(format) + "</code>: nothing to load",
            n: esc(named(c)) + " has no <code>" + esc(loader) + "</code> loader for this format",
            e: esc(named(p)) + " and " + esc(named(c)) + " are both cells of a related map (references): " +
               "this pair is measured there, not here",
            "-": esc(named(p)) + " wrote no <code>" + esc(format) + "</code> model that " +
                 esc(named(c)) + " tried with <code>" + esc(loader) + "</code>"}[sq.v];
  }
  function apart(sq, p, c, format) {  // what is shown apart: device-bound probes, failed exports
    var out = [], seen = {};
    sq.every.split("").forEach(function (x, i) {
      var probe = DATA.probes[i];
      if (x === "g" && !seen[probe[0]]) {
        seen[probe[0]] = true;
        out.push(esc(probe[0]) + (probe[1] && !has(c, probe[1]) ? " needs a " + esc(probe[1]) + " (this consumer has none)"
          : " has no kernel on this consumer's devices"));
      }
    });
    (DATA.exports[p + "," + format] || []).forEach(function (e) {
      out.push(esc(format) + " export failed: " + esc(e[0]) + ", " + esc(e[1]));
    });
    return out;
  }
  function problemsHtml(list_, c) {
    var bySig = {}, order = [], predicted = {}, picked = chosen(c).map(function (i) { return DATA.probes[i][0]; });
    list_.forEach(function (b) {
      if (!bySig[b[2]]) { bySig[b[2]] = []; order.push(b[2]); }
      bySig[b[2]].push(b);
      b[4].forEach(function (n) { predicted[n] = true; });
    });
    var names = Object.keys(predicted).sort();
    return order.map(function (s) {
      var items = bySig[s], sig = DATA.sigs[s], probes = [], errors = [];
      items.forEach(function (b) {
        probes.push(b[0] + (picked.indexOf(b[0]) < 0 ? " (not counted)" : ""));
        if (errors.indexOf(b[3]) < 0) { errors.push(b[3]); }
      });
      var more = errors.slice(1, 6).map(function (e) { return "<pre class=\"error\">" + esc(DATA.errors[e]) + "</pre>"; });
      return "<div class=\"finding\"><h4><span class=\"badge v-" + SLUGS[sig[1]] + "\">" + esc(WORDS[sig[1]]) +
        "</span> " + esc(sig[0]) + "</h4><p class=\"muted\">" + items.length + " probe" +
        (items.length === 1 ? "" : "s") + ": " + esc(probes.join(", ")) + "</p>" +
        "<pre class=\"error\">" + esc(DATA.errors[errors[0]]) + "</pre>" +
        (more.length ? "<details><summary>" + (errors.length - 1) + " more error text" + (errors.length > 2 ? "s" : "") +
          " of this finding</summary>" + more.join("") + "</details>" : "") + "</div>";
    }).join("") + (names.length ? "<p>The static check of these models against this consumer's op registry finds " +
      "missing: <code class=\"predicted\">" + esc(names.join(", ")) + "</code></p>" : "");
  }
  function fact(id, cell) {
    return "<b id=\"" + id + "\" data-cell=\"" + (cell < 0 ? "" : esc(DATA.cells[cell][0])) + "\">" +
      (cell < 0 ? "none" : esc(label(cell))) + "</b>";
  }
  function noneBecause(gi, c) {  // why no producer loads: a chosen probe no consumer here can run
    var g = DATA.grids[gi], bound = {};
    g.p.forEach(function (p, r) {
      var sq = square(gi, r, c);
      if (sq.v === "o" && !sq.loads) { probesWith(sq, c, "g").forEach(function (n) { bound[n] = true; }); }
    });
    var names = Object.keys(bound);
    return names.length ? " (" + list(names) + " cannot run on this consumer's devices; choose the device-portable " +
      "probes)" : "";
  }
  function answer() {
    var s = current(), p = CELL[s.from], c = CELL[s.to], gi = gridOf(s.format, s.loader), box = byId("answer");
    $("td.sel").forEach(function (td) { td.classList.remove("sel"); });
    if (gi < 0 || p === undefined || c === undefined) {
      box.innerHTML = "<p>No loads of this format with this loader.</p>";
      return;
    }
    var g = DATA.grids[gi], row = g.p.indexOf(p), sq = square(gi, row, c);
    var bad = DATA.bad[gi + "," + p + "," + c] || [];
    var newest = newestProducer(gi, c), oldest = row < 0 ? -1 : oldestConsumer(gi, p), notes = apart(sq, p, c, s.format);
    box.setAttribute("data-verdict", WORDS[sq.v]);
    box.setAttribute("data-loads", sq.loads ? "yes" : "no");
    box.innerHTML = "<p class=\"verdict\"><span class=\"badge big v-" + SLUGS[sq.v] + "\" id=\"verdict\">" +
      esc(WORDS[sq.v]) + "</span> <span id=\"sentence\">" + sentence(sq, p, c, s.format, s.loader) +
      (notes.length ? "; " + notes.join("; ") : "") + ".</span></p>" +
      problemsHtml(bad, c) +
      "<ul class=\"facts\"><li>Newest TF whose <code>" + esc(s.format) + "</code> models load in " + esc(named(c)) +
      " with <code>" + esc(s.loader) + "</code>: " + fact("newest", newest) + (newest < 0 ? noneBecause(gi, c) : "") +
      "</li><li>Oldest TF that loads this model from " + esc(named(p)) + ": " + fact("oldest", oldest) + "</li>" +
      "<li><a href=\"#grid-" + gi + "\">the grid of " + esc(s.format) + " / " + esc(s.loader) + "</a>; " +
      "<code>" + esc(s.from) + "</code> → <code>" + esc(s.to) + "</code></li></ul>";
    var table = byId("grid-" + gi);
    if (table && row >= 0) {
      var tr = table.querySelector("tbody").rows[row];
      if (tr && tr.cells[c + 1]) { tr.cells[c + 1].classList.add("sel"); }
    }
  }

  // -- the grids, coloured for the chosen probes
  var painted = null;
  function paint() {
    var key = probesKey();
    if (key === painted) { return; }
    painted = key;
    $(".grid-box").forEach(function (box) {
      var gi = +box.getAttribute("data-grid"), rows = box.querySelector("tbody").rows;
      for (var r = 0; r < rows.length; r += 1) {
        for (var c = 0; c < NC; c += 1) {
          var td = rows[r].cells[c + 1], sq = square(gi, r, c), none = sq.v === "-" && !sq.marks.length;
          td.className = "v v-" + SLUGS[sq.v] + sq.marks.map(function (m) { return " m-" + SLUGS[m]; }).join("");
          td.textContent = sq.text;
          if (none) { td.removeAttribute("tabindex"); } else { td.setAttribute("tabindex", "0"); }
        }
      }
    });
  }

  // -- the state in the URL fragment: #from=..&format=..&to=..&loader=..&probes=..&f=..&s=..&q=..
  var KEYS = ["from", "format", "to", "loader", "probes", "f", "s", "q"];
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
            loader: byId("p-loader").value, probes: probesKey(), f: byId("f-format").value,
            s: byId("f-status").value, q: byId("f-text").value.trim()};
  }
  function notice(messages) {
    var el = byId("notice");
    el.hidden = !messages.length;
    el.textContent = messages.length ? "This link asks for " + messages.join("; ") + ", which this report does not " +
      "hold: it shows " + (DATA.default ? "its default pair" : "what it has") + " there instead." : "";
  }
  function restore() {
    var st = readHash(), d = DATA.default || [], missing = [];
    var known = function (key, value, ok, what) {
      if (value !== undefined && value !== "" && !ok) { missing.push(what + " " + JSON.stringify(value)); }
      return value !== undefined && ok;
    };
    byId("p-from").value = known("from", st.from, CELL[st.from] !== undefined, "the TensorFlow cell") ? st.from : d[0] || byId("p-from").value;
    byId("p-to").value = known("to", st.to, CELL[st.to] !== undefined, "the TensorFlow cell") ? st.to : d[2] || byId("p-to").value;
    var formats = DATA.grids.map(function (g) { return g.f; });
    byId("p-format").value = known("format", st.format, formats.indexOf(st.format) >= 0, "the format") ? st.format
      : d[1] || byId("p-format").value;
    var loaders = loadersOf(byId("p-format").value);
    fillLoaders(known("loader", st.loader, loaders.indexOf(st.loader) >= 0, "the loader") ? st.loader
      : byId("p-format").value === d[1] ? d[3] : undefined);
    restoreProbes(st.probes, missing);
    notice(missing);
    byId("f-format").value = st.f || "";
    byId("f-status").value = st.s || "";
    byId("f-text").value = st.q || "";
  }
  function restoreProbes(value, missing) {
    var mode = value === "all" ? "all" : value ? "some" : "", names = mode === "some" && value !== "none" ? value.split(",") : [];
    var unknown = names.filter(function (n) { return PROBE[n] === undefined; });
    if (unknown.length) { missing.push("the probe" + (unknown.length > 1 ? "s " : " ") + unknown.join(", ")); }
    byId("p-probes").value = mode;
    if (mode === "some") { $("#p-some input").forEach(function (b) { b.checked = names.indexOf(b.value) >= 0; }); }
    byId("p-some").hidden = mode !== "some";
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
    byId("p-some").hidden = byId("p-probes").value !== "some";
    paint();
    filter();
    answer();
    writeHash();
  }
  function changed() { notice([]); update(); }

  function pick(td) {
    var box = td.closest(".grid-box"), g = DATA.grids[+box.getAttribute("data-grid")];
    var row = td.parentNode.sectionRowIndex, col = td.cellIndex - 1;
    byId("p-from").value = DATA.cells[g.p[row]][0];
    byId("p-to").value = DATA.cells[col][0];
    byId("p-format").value = g.f;
    fillLoaders(g.l);
    changed();
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
    changed();
  }

  restore();
  byId("p-format").addEventListener("change", function () { fillLoaders(byId("p-loader").value); changed(); });
  ["p-from", "p-to", "p-loader", "p-probes", "f-format", "f-status"].forEach(function (id) {
    byId(id).addEventListener("change", changed);
  });
  byId("p-some").addEventListener("change", changed);
  byId("f-text").addEventListener("input", changed);
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
  window.addEventListener("hashchange", function () { restore(); update(); });
  painted = "";  // the page comes coloured for the default probes
  update();
}());
