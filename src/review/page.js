"use strict";
(function () {
  var body = document.body;
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var rows = Array.prototype.slice.call(document.querySelectorAll(".row"));
  var fStatus = document.getElementById("f-status");
  var fMark = document.getElementById("f-mark");
  var focused = -1;

  cards.forEach(function (c) {
    c.origMark = c.dataset.mark;
    c.origNote = c.dataset.note;
    show(c);
  });

  function show(c) {
    c.querySelector(".verdict .mark").textContent = c.dataset.mark;
    c.querySelector(".verdict .note").textContent = c.dataset.note;
  }

  // Videos get their src only when their card comes near the viewport, so a page of
  // thousands of shots opens at once and loads what is looked at.
  function load(v) {
    if (v.getAttribute("src")) { return; }
    v.addEventListener("loadedmetadata", function () { v.dataset.loaded = "1"; });
    v.addEventListener("error", function () {
      v.dataset.loaded = "0";
      v.title = "this browser cannot play " + v.dataset.src;
    });
    v.src = v.dataset.src;
  }
  var videos = document.querySelectorAll("video[data-src]");
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting) { load(e.target); io.unobserve(e.target); }
      });
    }, { rootMargin: "600px" });
    Array.prototype.forEach.call(videos, function (v) { io.observe(v); });
  } else {
    Array.prototype.forEach.call(videos, load);
  }

  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    fStatus.value = p.get("status") || "";
    fMark.value = p.get("mark") || "";
  }

  function filter() {
    var st = fStatus.value, mk = fMark.value, shown = 0;
    cards.forEach(function (c) {
      var ok = (!st || c.dataset.status === st) &&
        (!mk || (mk === "none" ? !c.dataset.mark : c.dataset.mark === mk));
      c.classList.toggle("hidden", !ok);
      if (ok) { shown++; }
    });
    rows.forEach(function (r) {
      r.classList.toggle("hidden", !r.querySelector(".card:not(.hidden)"));
    });
    document.getElementById("shown").textContent = shown + " of " + cards.length + " shown";
  }

  function onFilter() {
    var p = new URLSearchParams();
    if (fStatus.value) { p.set("status", fStatus.value); }
    if (fMark.value) { p.set("mark", fMark.value); }
    history.replaceState(null, "", "#" + p.toString());
    filter();
  }

  function setMark(c, act) {
    if (act === "note") {
      if (!c.dataset.mark) { alert("Approve or reject the shot first, then add a note."); return; }
      var n = prompt("Note for " + c.dataset.id, c.dataset.note);
      if (n === null) { return; }
      c.dataset.note = n.slice(0, 2000);
    } else if (act === "cleared") {
      c.dataset.mark = "";
      c.dataset.note = "";
    } else {
      c.dataset.mark = act;
    }
    show(c);
    pending();
  }

  function quote(s) {
    return /^[A-Za-z0-9._\/:=@%+-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
  }

  function changed() {
    return cards.filter(function (c) {
      return c.dataset.mark !== c.origMark || c.dataset.note !== c.origNote;
    });
  }

  function pending() {
    var list = changed();
    var box = document.getElementById("pending");
    box.hidden = list.length === 0;
    document.getElementById("pending-count").textContent = String(list.length);
    var groups = {};
    var order = [];
    list.forEach(function (c) {
      var g = (c.dataset.mark || "cleared") + "\n" + c.dataset.note;
      if (!groups[g]) { groups[g] = []; order.push(g); }
      groups[g].push(c.dataset.id);
    });
    var flag = { approved: "--approve", rejected: "--reject", cleared: "--clear" };
    document.getElementById("command").value = order.map(function (g) {
      var parts = g.split("\n");
      var cmd = ["shotlist", "mark", quote(body.dataset.manifest)].concat(groups[g].map(quote));
      cmd.push(flag[parts[0]]);
      if (parts[1] && parts[0] !== "cleared") { cmd.push("--note", quote(parts[1])); }
      cmd.push("--out", quote(body.dataset.out));
      return cmd.join(" ");
    }).join("\n");
  }

  // Copies a textarea's value or an element's text; selected first, for execCommand.
  function copy(el) {
    var text = el.select ? el.value : el.textContent;
    if (el.select) {
      el.select();
    } else {
      var r = document.createRange();
      r.selectNodeContents(el);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).catch(function () { document.execCommand("copy"); });
    } else {
      document.execCommand("copy");
    }
  }

  document.getElementById("copy").addEventListener("click", function () {
    copy(document.getElementById("command"));
  });
  Array.prototype.forEach.call(document.querySelectorAll(".copy-held"), function (b) {
    b.addEventListener("click", function () { copy(b.parentNode.querySelector(".cmd")); });
  });

  document.getElementById("download").addEventListener("click", function () {
    var marks = changed().map(function (c) {
      var m = { id: c.dataset.id, key: c.dataset.key, mark: c.dataset.mark || "cleared" };
      if (c.dataset.note && c.dataset.mark) { m.note = c.dataset.note; }
      return m;
    });
    var blob = new Blob([JSON.stringify({ version: 1, marks: marks }, null, 2) + "\n"],
      { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "marks.json";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  });

  cards.forEach(function (c, i) {
    c.addEventListener("click", function (e) {
      var act = e.target.dataset && e.target.dataset.act;
      if (act) { setMark(c, act); }
      focus(i, false);
    });
  });

  function focus(i, scroll) {
    if (focused >= 0) { cards[focused].classList.remove("focused"); }
    focused = i;
    cards[i].classList.add("focused");
    if (scroll) {
      cards[i].focus({ preventScroll: true });
      cards[i].scrollIntoView({ block: "center", inline: "nearest" });
    }
  }

  function step(d) {
    for (var i = focused + d; i >= 0 && i < cards.length; i += d) {
      if (!cards[i].classList.contains("hidden")) { focus(i, true); return; }
    }
  }

  document.addEventListener("keydown", function (e) {
    var tag = e.target.tagName;
    if (e.ctrlKey || e.metaKey || e.altKey || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    var keys = { j: 1, ArrowRight: 1, k: -1, ArrowLeft: -1 };
    var acts = { a: "approved", r: "rejected", c: "cleared", n: "note" };
    if (keys[e.key]) { step(keys[e.key]); e.preventDefault(); }
    else if (acts[e.key] && focused >= 0) { setMark(cards[focused], acts[e.key]); e.preventDefault(); }
  });

  fStatus.addEventListener("change", onFilter);
  fMark.addEventListener("change", onFilter);
  window.addEventListener("hashchange", function () { readHash(); filter(); });
  readHash();
  filter();
  body.dataset.ready = "1";
})();
