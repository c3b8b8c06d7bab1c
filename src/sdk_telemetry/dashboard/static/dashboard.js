/* sdk-telemetry dashboard: renders the overview JSON with hand-drawn SVG charts. No dependencies. */
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = {
    range: params.get("range") || null,
    fn: params.get("function") || "",
    steps: params.get("steps") || "",
    key: null,
    data: null,
    timer: null,
  };
  const REFRESH_MS = 15000;
  const COLORS = { p50: "var(--p50)", p95: "var(--p95)", p99: "var(--p99)" };

  function el(tag, attrs, ...children) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const fmtInt = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    if (v === 0) return "0";
    if (v >= 10000) return (v / 1000).toFixed(1) + " s";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    if (v >= 100) return v.toFixed(0) + " ms";
    if (v >= 10) return v.toFixed(1) + " ms";
    return v.toFixed(2) + " ms";
  }
  const fmtPct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(v >= 0.1 || v === 0 ? 1 : 2) + "%");
  function fmtRate(v) {
    if (!v) return "0";
    if (v >= 100) return v.toFixed(0);
    if (v >= 1) return v.toFixed(1);
    if (v >= 0.01) return v.toFixed(2);
    return v.toExponential(1);
  }
  function fmtTime(iso, step) {
    const d = new Date(iso);
    if (step >= 86400) return d.toLocaleDateString("en-GB", { day: "2-digit", month: "short", timeZone: "UTC" });
    return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
  }
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /* ---------- tooltip ---------- */
  const tip = $("tooltip");
  function showTip(evt, title, rows) {
    tip.replaceChildren(
      el("div", { class: "t", text: title }),
      ...rows.map(([color, label, value]) =>
        el("div", { class: "r" }, el("span", {}, el("i", { style: `background:${color}` }), label), el("b", { text: value }))
      )
    );
    tip.hidden = false;
    const x = Math.min(evt.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = x + "px";
    tip.style.top = evt.clientY + 14 + "px";
  }
  const hideTip = () => (tip.hidden = true);

  /* ---------- charts ---------- */
  function frame(container) {
    const width = Math.max(280, container.clientWidth || 600);
    const height = Math.max(120, container.clientHeight || 190);
    return { width, height, left: 52, right: 10, top: 10, bottom: 24 };
  }

  function axes(svg, f, max, fmt, points, step) {
    const innerH = f.height - f.top - f.bottom;
    for (let i = 0; i <= 4; i++) {
      const y = f.top + innerH - (innerH * i) / 4;
      svg.append(el("svg:line", { class: "gridline", x1: f.left, x2: f.width - f.right, y1: y, y2: y }));
      svg.append(el("svg:text", { class: "axis", x: f.left - 8, y: y + 4, "text-anchor": "end", text: fmt((max * i) / 4) }));
    }
    const n = points.length;
    const ticks = Math.min(n, Math.max(2, Math.floor((f.width - f.left) / 110)));
    for (let i = 0; i < ticks; i++) {
      const idx = n === 1 ? 0 : Math.round((i * (n - 1)) / (ticks - 1));
      const x = xAt(f, idx, n);
      svg.append(el("svg:text", { class: "axis", x, y: f.height - 6, "text-anchor": "middle", text: fmtTime(points[idx].start, step) }));
    }
  }

  function xAt(f, i, n) {
    const inner = f.width - f.left - f.right;
    return n <= 1 ? f.left + inner / 2 : f.left + (inner * i) / (n - 1);
  }

  function hoverLayer(svg, f, points, onMove) {
    const line = el("svg:line", { class: "hover-line", y1: f.top, y2: f.height - f.bottom, visibility: "hidden" });
    const rect = el("svg:rect", { x: f.left, y: f.top, width: f.width - f.left - f.right, height: f.height - f.top - f.bottom, fill: "transparent" });
    rect.addEventListener("mousemove", (evt) => {
      const box = svg.getBoundingClientRect();
      const scale = f.width / box.width;
      const x = (evt.clientX - box.left) * scale;
      const n = points.length;
      const i = n <= 1 ? 0 : Math.max(0, Math.min(n - 1, Math.round(((x - f.left) / (f.width - f.left - f.right)) * (n - 1))));
      const px = xAt(f, i, n);
      line.setAttribute("x1", px);
      line.setAttribute("x2", px);
      line.setAttribute("visibility", "visible");
      onMove(evt, i);
    });
    rect.addEventListener("mouseleave", () => {
      line.setAttribute("visibility", "hidden");
      hideTip();
    });
    svg.append(line, rect);
  }

  function lineChart(container, points, series, fmt, step, name) {
    container.replaceChildren();
    if (!points.length) return container.append(el("div", { class: "empty", text: "No calls in this range" }));
    const f = frame(container);
    const svg = el("svg:svg", { viewBox: `0 0 ${f.width} ${f.height}`, preserveAspectRatio: "none", role: "img", "aria-label": name });
    let max = 0;
    for (const s of series) for (const p of points) if (p[s.key] !== null && p[s.key] > max) max = p[s.key];
    max = niceMax(max);
    axes(svg, f, max, fmt, points, step);
    const innerH = f.height - f.top - f.bottom;
    const yAt = (v) => f.top + innerH - (innerH * v) / max;
    series.forEach((s, si) => {
      const coords = points.map((p, i) => (p[s.key] === null ? null : [xAt(f, i, points.length), yAt(p[s.key])]));
      const d = coords.reduce((acc, c, i) => (c ? acc + (acc && coords[i - 1] ? " L" : " M") + c[0].toFixed(1) + " " + c[1].toFixed(1) : acc), "");
      if (si === 0 && s.area) {
        const first = coords.find(Boolean), last = [...coords].reverse().find(Boolean);
        if (first) {
          const gid = "g-" + name.replace(/\W/g, "");
          svg.append(el("svg:defs", {}, el("svg:linearGradient", { id: gid, x1: 0, x2: 0, y1: 0, y2: 1 },
            el("svg:stop", { offset: "0%", "stop-color": s.color, "stop-opacity": 0.28 }),
            el("svg:stop", { offset: "100%", "stop-color": s.color, "stop-opacity": 0 }))));
          svg.append(el("svg:path", { d: `${d} L${last[0]} ${yAt(0)} L${first[0]} ${yAt(0)} Z`, fill: `url(#${gid})`, stroke: "none" }));
        }
      }
      svg.append(el("svg:path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round", "stroke-linecap": "round", "data-series": s.key, "vector-effect": "non-scaling-stroke" }));
      if (points.length <= 40) coords.forEach((c) => c && svg.append(el("svg:circle", { cx: c[0], cy: c[1], r: 2.5, fill: s.color })));
    });
    hoverLayer(svg, f, points, (evt, i) =>
      showTip(evt, new Date(points[i].start).toUTCString().replace(" GMT", " UTC"),
        [...series.map((s) => [s.color, s.label, fmt(points[i][s.key])]), ["var(--muted)", "calls", fmtInt(points[i].calls)]])
    );
    container.append(svg);
  }

  function barChart(container, points, key, color, fmt, step, name) {
    container.replaceChildren();
    if (!points.length) return container.append(el("div", { class: "empty", text: "No calls in this range" }));
    const f = frame(container);
    const svg = el("svg:svg", { viewBox: `0 0 ${f.width} ${f.height}`, preserveAspectRatio: "none", role: "img", "aria-label": name });
    const max = niceMax(Math.max(...points.map((p) => p[key] || 0)));
    axes(svg, f, max, fmt, points, step);
    const inner = f.width - f.left - f.right, innerH = f.height - f.top - f.bottom;
    const slot = inner / Math.max(points.length, 1);
    const w = Math.max(1.5, Math.min(slot * 0.72, 28));
    points.forEach((p, i) => {
      const h = (innerH * (p[key] || 0)) / max;
      const x = points.length === 1 ? f.left + inner / 2 : xAt(f, i, points.length);
      svg.append(el("svg:rect", { x: x - w / 2, y: f.top + innerH - h, width: w, height: Math.max(h, p[key] ? 1 : 0), rx: Math.min(3, w / 3), fill: color, "data-series": key }));
    });
    hoverLayer(svg, f, points, (evt, i) =>
      showTip(evt, new Date(points[i].start).toUTCString().replace(" GMT", " UTC"), [[color, name, fmt(points[i][key])], ["var(--muted)", "calls", fmtInt(points[i].calls)]])
    );
    container.append(svg);
  }

  /* ---------- panels ---------- */
  function kpis(d) {
    const t = d.totals || {};
    const cards = [
      ["Calls", fmtInt(t.calls), `${fmtInt(d.functions.length)} functions`, "var(--accent)"],
      t.throughput_per_s >= 1 || !t.throughput_per_s
        ? ["Throughput", fmtRate(t.throughput_per_s), "calls per second", "var(--p50)", "/s"]
        : ["Throughput", fmtRate(t.throughput_per_s * 60), "calls per minute", "var(--p50)", "/min"],
      ["Error rate", fmtPct(t.error_rate), `${fmtInt(t.errors)} errors`, "var(--error)"],
      ["p50", fmtMs(t.p50_ms), "median latency", "var(--p50)"],
      ["p95", fmtMs(t.p95_ms), "95th percentile", "var(--p95)"],
      ["p99", fmtMs(t.p99_ms), `max ${fmtMs(t.max_ms)}`, "var(--p99)"],
    ];
    $("kpis").replaceChildren(
      ...cards.map(([label, value, sub, color, unit]) =>
        el("div", { class: "kpi", style: `--c:${color}`, "data-kpi": label.toLowerCase().replace(" ", "-") },
          el("div", { class: "label", text: label }),
          el("div", { class: "value" }, value, unit ? el("small", { text: unit }) : null),
          el("div", { class: "sub", text: sub }))
      )
    );
  }

  function functionsTable(d) {
    const max = Math.max(1, ...d.functions.map((r) => r.calls));
    const head = el("thead", {}, el("tr", {}, ...["function", "calls", "errors", "error rate", "p50", "p95", "p99"].map((h) => el("th", { text: h }))));
    const body = el("tbody", {}, ...d.functions.map((r) =>
      el("tr", { class: r.function === d.selected ? "selected" : null, "data-function": r.function, on: { click: () => select(r.function === state.fn ? "" : r.function) } },
        el("td", { class: "fn", text: r.function }),
        el("td", {}, el("div", { class: "bar-cell" }, el("span", { class: "bar", style: `width:${Math.max(2, (60 * r.calls) / max)}px` }), fmtInt(r.calls))),
        el("td", { text: fmtInt(r.errors) }),
        el("td", { class: "rate" + (r.error_rate > 0.05 ? " bad" : ""), text: fmtPct(r.error_rate) }),
        el("td", { text: fmtMs(r.p50_ms) }),
        el("td", { text: fmtMs(r.p95_ms) }),
        el("td", { text: fmtMs(r.p99_ms) }))
    ));
    $("functions").replaceChildren(head, body);
    const picker = $("function");
    picker.replaceChildren(el("option", { value: "", text: "all functions" }), ...d.functions.map((r) => el("option", { value: r.function, text: r.function, selected: r.function === d.selected ? "selected" : null })));
    picker.onchange = () => select(picker.value);
  }

  function funnelPanel(d) {
    const box = $("funnel");
    const f = d.funnel;
    $("funnel-note").textContent = f ? (d.funnel_auto ? "main journey" : "per session") + ` · ${Math.round(f.window_seconds / 60)} min window` : "";
    if (!f || !f.entered) return box.replaceChildren(el("div", { class: "empty", style: "height:150px", text: "No journey with two steps yet" }));
    box.replaceChildren(...f.steps.map((s, i) =>
      el("div", { class: "step", "data-step": s.step, "data-count": s.count },
        el("div", { class: "row" }, el("span", { class: "name", text: `${i + 1}. ${s.step}` }), el("b", { text: `${fmtInt(s.count)} · ${fmtPct(s.conversion)}` })),
        el("div", { class: "track" }, el("div", { class: "fill", style: `width:${Math.max(1.5, 100 * s.conversion)}%` })),
        i && s.dropped ? el("div", { class: "drop", text: `−${fmtInt(s.dropped)} dropped (${fmtPct(1 - s.from_previous)})` }) : null)
    ));
  }

  function alertsPanel(d) {
    const box = $("alerts");
    const a = d.alerts;
    $("alerts-source").textContent = a && a.source ? a.source.split("/").pop() : "";
    if (!a || !a.alerts || !a.alerts.length)
      return box.replaceChildren(el("div", { class: "empty", style: "height:120px", text: "No monitors configured (serve --monitors rules.yaml)" }));
    const order = { firing: 0, pending: 1, resolved: 2, ok: 3 };
    const sorted = [...a.alerts].sort((x, y) => order[x.state] - order[y.state] || x.name.localeCompare(y.name));
    box.replaceChildren(...sorted.map((r) =>
      el("div", { class: `alert state-${r.state}`, "data-alert": r.name, "data-state": r.state },
        el("div", { class: "row" }, el("span", { class: "name", text: r.name }), el("span", { class: "pill", text: r.state })),
        el("div", { class: "desc", text: r.rule.description }),
        el("div", { class: "row desc" }, el("span", { class: "value", text: `now ${r.value_text}` }), el("span", { text: r.episodes ? `${r.episodes} episode${r.episodes > 1 ? "s" : ""}` : "" })))
    ));
  }

  function errorsPanel(d) {
    const box = $("top-errors");
    if (!d.top_errors.length) return box.replaceChildren(el("div", { class: "empty", style: "height:120px", text: "No errors in this range" }));
    box.replaceChildren(...d.top_errors.map((e) =>
      el("div", { class: "error-item", "data-error": e.type },
        el("span", { class: "type", text: e.type }), el("span", { class: "where", text: e.function }), el("span", { class: "count", text: fmtInt(e.count) }),
        el("span", { class: "msg", title: e.sample_message, text: e.sample_message || "" }))
    ));
  }

  function rangeButtons(d) {
    $("ranges").replaceChildren(...d.ranges.map((r) =>
      el("button", { class: r === d.range ? "on" : null, "data-range": r, text: r, on: { click: () => { state.range = r; refresh(); } } })
    ));
  }

  function render(d) {
    state.data = d;
    if (d.error) return notice(d.error);
    if (d.empty) return notice(`No telemetry recorded yet — the store ${d.store} does not exist.`);
    $("store").textContent = d.store ? d.store.split("/").pop() : "";
    $("store").title = d.store || "";
    state.range = d.range;
    rangeButtons(d);
    kpis(d);
    const step = d.step_seconds;
    const percentiles = ["p50", "p95", "p99"].map((k, i) => ({ key: `${k}_ms`, label: k, color: COLORS[k], area: i === 0 }));
    lineChart($("latency"), d.series, percentiles, fmtMs, step, "latency");
    $("latency-legend").replaceChildren(...percentiles.map((s) => el("span", {}, el("i", { style: `background:${s.color}` }), s.label)));
    barChart($("throughput"), d.series, "throughput_per_s", "var(--accent)", fmtRate, step, "calls/s");
    lineChart($("error-rate"), d.series, [{ key: "error_rate", label: "error rate", color: "var(--error)", area: true }], fmtPct, step, "errors");
    functionsTable(d);
    funnelPanel(d);
    alertsPanel(d);
    errorsPanel(d);
    $("updated").textContent = "updated " + new Date(d.generated_at).toLocaleTimeString("en-GB", { timeZone: "UTC" }) + " UTC";
    $("live").className = "live";
    document.body.dataset.ready = "true";
  }

  function notice(text, withKey) {
    const main = $("main");
    const box = el("div", { class: "notice" }, el("p", { text }));
    if (withKey) {
      const input = el("input", { type: "password", placeholder: "API key", id: "key" });
      box.append(el("form", { on: { submit: (e) => { e.preventDefault(); localStorage.setItem("sdk-telemetry-key", input.value); state.key = input.value; location.reload(); } } }, input, el("button", { type: "submit", text: "Open" })));
    }
    main.querySelector(".notice")?.remove();
    main.prepend(box);
  }

  function select(fn) {
    state.fn = fn;
    refresh();
  }

  function query() {
    const q = new URLSearchParams();
    if (state.range) q.set("range", state.range);
    if (state.fn) q.set("function", state.fn);
    if (state.steps) q.set("steps", state.steps);
    return q.toString();
  }

  async function refresh() {
    const q = query();
    history.replaceState(null, "", q ? "?" + q : location.pathname);
    try {
      const headers = state.key ? { "X-API-Key": state.key } : {};
      const response = await fetch(API + (q ? "?" + q : ""), { headers, cache: "no-store" });
      if (response.status === 401) return notice("This dashboard needs an API key.", true);
      const body = await response.json();
      if (!response.ok) return notice(body.error ? body.error.message : `HTTP ${response.status}`);
      $("main").querySelector(".notice")?.remove();
      render(body);
    } catch (err) {
      $("live").className = "live stale";
    }
  }

  function start() {
    const initial = JSON.parse($("initial").textContent);
    const hashKey = new URLSearchParams(location.hash.slice(1)).get("key");
    state.key = hashKey || localStorage.getItem("sdk-telemetry-key");
    if (hashKey) localStorage.setItem("sdk-telemetry-key", hashKey);
    if (initial) render(initial);
    else refresh();
    state.timer = setInterval(() => document.hidden || refresh(), REFRESH_MS);
    let resizing;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(() => state.data && render(state.data), 120); });
  }

  start();
})();
