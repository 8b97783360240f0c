{% raw %}
(function () {
  "use strict";
  // Every row text goes into the page through textContent, never as HTML. No text is cut
  // or measured here: Python counts code points, JavaScript UTF-16 units, so the data holds
  // the pieces to show (output around the carried state, the list line) ready-made.
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById("motif-data").textContent);
  var RUNS = D.runs, PROBS = D.problems, TWO = RUNS.length > 1, AB = "AB";
  var FLAGS = {};  // hand-over flag code -> title (motif.handover)
  D.flags.forEach(function (f) { FLAGS[f[0]] = f[1]; });
  var $ = function (id) { return document.getElementById(id); };
  var shown = [], selected = -1, sampleOf = [0, 0];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function verdict(v) { return v === true ? "correct" : v === false ? "wrong" : "ungraded"; }
  function num(x) { return x === null || x === undefined ? "?" : x; }
  function badge(v, text) { return el("span", "badge " + verdict(v), text); }

  // search: one Unicode normal form both sides, so a typed "é" finds "e" + U+0301
  function fold(s) { return s.normalize("NFC").toLowerCase(); }
  PROBS.forEach(function (p) { p.hay = fold(p.id + "\n" + p.q); });
  var maxRounds = Math.max.apply(null, RUNS.map(function (r) { return r.rounds; }));
  for (var r = 2; r <= maxRounds; r++) {
    [["fx", "fixed in round "], ["br", "broken in round "]].forEach(function (o) {
      var opt = el("option", null, o[1] + r);
      opt.value = o[0] + r;
      $("change").appendChild(opt);
    });
  }

  // the hand-over filter: a flag in any round ("sm"), or in round r ("sm1")
  if ($("ho")) {
    D.flags.forEach(function (fl) {
      var opt = el("option", null, fl[1] + ", any round");
      opt.value = fl[0];
      $("ho").appendChild(opt);
      for (var r = 1; r < maxRounds; r++) {
        opt = el("option", null, fl[1] + ", round " + r);
        opt.value = fl[0] + r;
        $("ho").appendChild(opt);
      }
    });
  }

  function score(f) { return f ? f.c / f.n : null; }
  function matches(p, q, on, st, ch, cut, diff, ho) {
    if (q && p.hay.indexOf(q) < 0) return false;
    var f = p.f[on];
    if ((st || ch || cut || ho) && !f) return false;
    if (st && !f[st]) return false;
    if (ch && f[ch.slice(0, 2)].indexOf(+ch.slice(2)) < 0) return false;
    if (cut && !f.cut) return false;
    if (ho) {
      var at = f.ho ? f.ho[ho.slice(0, 2)] : [];
      if (!at.length || (ho.length > 2 && at.indexOf(+ho.slice(2)) < 0)) return false;
    }
    if (diff) {
      var a = score(p.f[0]), b = score(p.f[1]);
      if (a === null || b === null) return false;
      if (diff === "ne" && !((a === 1 && b === 0) || (a === 0 && b === 1))) return false;
      if (diff === "a" && !(a > b)) return false;
      if (diff === "b" && !(b > a)) return false;
    }
    return true;
  }

  function runBadge(f) {
    if (!f) return el("span", "badge absent", "–");
    var v = f.c === f.n ? true : f.u === f.n ? null : f.c === 0 ? false : true;
    var b = badge(v, f.n > 1 ? f.c + "/" + f.n : v === true ? "✓" : v === false ? "✗" : "?");
    if (f.n > 1 && f.c > 0 && f.c < f.n) b.style.opacity = "0.6";
    return b;
  }

  function filter() {
    var t = performance.now();
    var q = fold($("q").value.trim()), on = +$("on").value;
    var st = $("status").value, ch = $("change").value, cut = $("cut").checked;
    var diff = TWO ? $("diff").value : "", ho = $("ho") ? $("ho").value : "";
    shown = [];
    for (var i = 0; i < PROBS.length; i++) {
      if (matches(PROBS[i], q, on, st, ch, cut, diff, ho)) shown.push(i);
    }
    var list = $("list"), frag = document.createDocumentFragment();
    shown.forEach(function (i) {
      var p = PROBS[i], li = el("li");
      li.dataset.i = i;
      p.f.forEach(function (f, ri) {
        var b = li.appendChild(runBadge(f));
        b.title = AB[ri] + ": " + (f ? f.c + " of " + f.n + " correct" : "not in this run");
      });
      if (p.f.some(function (f) { return f && f.cut; })) li.appendChild(el("span", "badge cutb", "cut"));
      li.appendChild(el("span", "pid", p.id));
      li.appendChild(document.createTextNode(p.qs));
      if (i === selected) li.className = "sel";
      frag.appendChild(li);
    });
    list.textContent = "";
    list.appendChild(frag);
    $("count").textContent = shown.length + " of " + PROBS.length + " problems";
    window.motifView.filterMs = performance.now() - t;
  }

  // pieces: plain text at even places, the carried state (marked) at odd ones
  function piecesPre(pieces, head) {
    var pre = el("pre");
    if (head) pre.appendChild(head);
    pieces.forEach(function (s, i) {
      pre.appendChild(i % 2 ? el("mark", null, s) : document.createTextNode(s));
    });
    return pre;
  }

  function roundColumn(rd, prev, k, last) {
    var col = el("div", "round"), h = el("h3", null, (rd.name || "Round") + " " + k + " ");
    h.appendChild(badge(rd.v, verdict(rd.v)));
    if (rd.cut) h.appendChild(el("span", "badge cutb", "cut"));
    (rd.hw || []).forEach(function (code) {  // the hand-over watch's flags of this round
      var b = h.appendChild(el("span", "badge hob " + code, FLAGS[code]));
      b.title = "hand-over watch: " + FLAGS[code] + (code === "dg" && rd.hd ? " (" + rd.hd + ")" : "");
    });
    col.appendChild(h);
    col.appendChild(el("div", "lab", "answer: " + (rd.a === null ? "(none)" : rd.a) +
      " · tokens " + num(rd.pt) + " in, " + num(rd.ct) + " out"));
    if (prev && rd.name) {  // a tail chunk: it continues the thought, no summary carried
      if (rd.note) col.appendChild(el("div", "lab", rd.note));
    } else if (prev) {
      col.appendChild(el("div", "lab", "prompt (after the question)"));
      col.appendChild(piecesPre([rd.pre, prev.hs, rd.post], el("span", "qref", "[question]")));
    }
    col.appendChild(el("div", "lab", "output"));
    col.appendChild(piecesPre(rd.o));
    if (!last && !rd.name) {
      col.appendChild(el("div", "lab", "state handed to round " + (k + 1)));
      col.appendChild(el("pre")).appendChild(el("mark", null, rd.hs || "(empty)"));
    }
    return col;
  }

  function runBlock(p, ri) {
    var box = el("div", "runblock r" + ri), samples = p.s[ri];
    var head = el("div", "runhead");
    head.appendChild(el("b", null, AB[ri] + " · " + RUNS[ri].label + " "));
    box.appendChild(head);
    if (!samples) { box.appendChild(el("p", "hint", "not in this run")); return box; }
    var si = Math.min(sampleOf[ri], samples.length - 1), s = samples[si];
    if (samples.length > 1) {
      var bar = el("span", "samples", " sample ");
      samples.forEach(function (x, j) {
        var b = el("button", j === si ? "on " + verdict(x.v) : verdict(x.v), x.s);
        b.onclick = function () { sampleOf[ri] = j; show(selected); };
        bar.appendChild(b);
      });
      head.appendChild(bar);
    }
    var v = el("div", "runhead", "final: ");
    v.appendChild(badge(s.v, verdict(s.v)));
    v.appendChild(document.createTextNode(" answer " + (s.a === null ? "(none)" : s.a) +
      (s.stop ? " · stopped early" : "")));
    box.appendChild(v);
    var grid = el("div", "rounds");
    grid.style.setProperty("--n", s.r.length);
    s.r.forEach(function (rd, k) {
      grid.appendChild(roundColumn(rd, k ? s.r[k - 1] : null, k + 1, k === s.r.length - 1));
    });
    box.appendChild(grid);
    return box;
  }

  function show(i) {
    if (i < 0 || i >= PROBS.length) return;
    if (i !== selected) sampleOf = [0, 0];
    selected = i;
    var p = PROBS[i], d = $("detail");
    d.textContent = "";
    d.appendChild(el("h2", null, "Problem " + p.id));
    d.appendChild(el("div", "qbox", p.q));
    var g = el("div", "gold", "gold: ");
    g.appendChild(el("b", null, p.gold === null ? "(none)" : p.gold));
    d.appendChild(g);
    var runs = el("div", "runs" + (TWO ? " side" : ""));
    runs.style.setProperty("--n", RUNS.length);
    RUNS.forEach(function (_, ri) { runs.appendChild(runBlock(p, ri)); });
    d.appendChild(runs);
    Array.prototype.forEach.call($("list").children, function (li) {
      li.className = +li.dataset.i === i ? "sel" : "";
    });
  }

  window.motifView = { problems: PROBS.length, filterMs: null, loadMs: null,
    shown: function () { return shown.length; }, show: show };
  $("list").addEventListener("click", function (e) {
    var li = e.target.closest("li");
    if (li) show(+li.dataset.i);
  });
  ["q", "on", "status", "change", "cut", "diff", "ho"].forEach(function (id) {
    if ($(id)) $(id).addEventListener(id === "q" ? "input" : "change", filter);
  });
  document.addEventListener("keydown", function (e) {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    var at = shown.indexOf(selected);
    if (e.key === "j" && at + 1 < shown.length) show(shown[at + 1]);
    if (e.key === "k" && at > 0) show(shown[at - 1]);
  });
  filter();
  if (shown.length) show(shown[0]);
  window.motifView.loadMs = performance.now() - t0;
  document.body.dataset.ready = "1";
})();
{% endraw %}
