/* sdk-telemetry dashboard: the overview, drill-down views and analyses, drawn as hand-made SVG and
   HTML from the JSON API. No dependencies; nothing is fetched from any other host. */
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d", "all"];
  const RANGE_SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  const VIEWS = [["overview", "Overview"], ["errors", "Errors"], ["sessions", "Sessions"], ["analyses", "Analyses"]];
  const KEYS = ["view", "range", "service", "environment", "function", "trace", "span", "session", "type", "in", "steps"];
  const REFRESH_MS = 15000;
  const COLORS = { p50: "var(--p50)", p95: "var(--p95)", p99: "var(--p99)" };
  const state = { key: null, timer: null, last: null, dims: null };
  let q = readQuery();

  function readQuery() {
    const params = new URLSearchParams(location.search);
    const out = {};
    for (const k of KEYS) out[k] = params.get(k) || "";
    out.view = out.view || (out.trace ? "trace" : "overview");
    return out;
  }

  function el(tag, attrs, ...children) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
    return node;
  }

  /* ---------- formats ---------- */
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
    if (v === null || v === undefined) return "–";
    if (!v) return "0";
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    if (v >= 0.1) return v.toFixed(2);
    return v.toFixed(3);
  }
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const pad = (n) => String(n).padStart(2, "0");
  const fmtDay = (d) => `${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]}`;
  const fmtClock = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  const fmtWhen = (iso) => { const d = new Date(iso); return `${fmtDay(d)} ${fmtClock(d)}:${pad(d.getUTCSeconds())}`; };
  const fmtDuration = (s) => (s >= 3600 ? (s / 3600).toFixed(1) + " h" : s >= 60 ? (s / 60).toFixed(1) + " min" : s.toFixed(1) + " s");
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  /* The unit of a throughput: per second from one call a second, per minute below (as the card says). */
  const rateUnit = (perSecond) => (perSecond >= 1 ? "s" : "min");
  const rateKey = (unit) => (unit === "s" ? "throughput_per_s" : "throughput_per_min");

  /* ---------- tooltip ---------- */
  const tip = $("tooltip");
  function showTip(evt, title, rows) {
    tip.replaceChildren(el("div", { class: "t", text: title }), ...rows.map(([color, label, value]) =>
      el("div", { class: "r" }, el("span", {}, el("i", { style: `background:${color}` }), label), el("b", { text: value }))));
    tip.hidden = false;
    tip.style.left = Math.min(evt.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = evt.clientY + 14 + "px";
  }
  const hideTip = () => (tip.hidden = true);

  /* ---------- time charts: x is time; every bucket is present, empty ones too ---------- */
  function frame(container) {
    const width = Math.max(240, container.clientWidth || 600);
    const height = Math.max(120, container.clientHeight || 190);
    return { width, height, left: 52, right: 12, top: 10, bottom: 24 };
  }
  const TICK_STEPS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400].map((s) => s * 1000);

  function timeAxis(points, step) {
    const t0 = Date.parse(points[0].start), t1 = Date.parse(points[points.length - 1].start) + step * 1000;
    return { t0, t1, x: (f, t) => f.left + ((f.width - f.left - f.right) * (t - t0)) / Math.max(1, t1 - t0) };
  }

  function axes(svg, f, max, fmt, axis) {
    const innerH = f.height - f.top - f.bottom;
    for (let i = 0; i <= 4; i++) {
      const y = f.top + innerH - (innerH * i) / 4;
      svg.append(el("svg:line", { class: "gridline", x1: f.left, x2: f.width - f.right, y1: y, y2: y }));
      svg.append(el("svg:text", { class: "axis", x: f.left - 8, y: y + 4, "text-anchor": "end", text: fmt((max * i) / 4) }));
    }
    const span = axis.t1 - axis.t0;
    const multiDay = new Date(axis.t0).getUTCDate() !== new Date(axis.t1 - 1).getUTCDate() || span > 86400000;
    const inner = f.width - f.left - f.right;
    const pick = (room) => TICK_STEPS.find((s) => span / s <= room) || Math.ceil(span / room / 86400000) * 86400000;
    let every = pick(Math.max(2, Math.floor(inner / 64)));
    if (every < 86400000 && multiDay) every = pick(Math.max(2, Math.floor(inner / 100)));  // "27 Nov 12:00" is wider
    const labelOf = (t) => { const d = new Date(t); return every >= 86400000 ? fmtDay(d) : multiDay ? `${fmtDay(d)} ${fmtClock(d)}` : fmtClock(d); };
    for (let t = Math.ceil(axis.t0 / every) * every; t <= axis.t1; t += every) {
      const x = axis.x(f, t);
      svg.append(el("svg:line", { class: "tick", x1: x, x2: x, y1: f.height - f.bottom, y2: f.height - f.bottom + 4 }));
      svg.append(el("svg:text", { class: "axis x-label", x, y: f.height - 6, "text-anchor": "middle", text: labelOf(t) }));
    }
  }

  function hoverLayer(svg, f, points, axis, step, onMove) {
    const line = el("svg:line", { class: "hover-line", y1: f.top, y2: f.height - f.bottom, visibility: "hidden" });
    const rect = el("svg:rect", { x: f.left, y: f.top, width: f.width - f.left - f.right, height: f.height - f.top - f.bottom, fill: "transparent" });
    rect.addEventListener("mousemove", (evt) => {
      const box = svg.getBoundingClientRect();
      const x = (evt.clientX - box.left) * (f.width / box.width);
      const t = axis.t0 + ((x - f.left) / (f.width - f.left - f.right)) * (axis.t1 - axis.t0);
      const i = Math.max(0, Math.min(points.length - 1, Math.floor((t - axis.t0) / (step * 1000))));
      const px = axis.x(f, Date.parse(points[i].start) + (step * 1000) / 2);
      line.setAttribute("x1", px); line.setAttribute("x2", px); line.setAttribute("visibility", "visible");
      onMove(evt, i);
    });
    rect.addEventListener("mouseleave", () => { line.setAttribute("visibility", "hidden"); hideTip(); });
    svg.append(line, rect);
  }

  const bucketTitle = (p, step) => { const d = new Date(p.start); return `${fmtDay(d)} ${fmtClock(d)} UTC · ${fmtDuration(step)} bucket`; };

  function emptyChart(container, text) {
    container.replaceChildren(el("div", { class: "empty", text }));
  }

  function lineChart(container, points, series, fmt, step, name) {
    container.replaceChildren();
    if (!points.length || !points.some((p) => p.calls)) return emptyChart(container, "No calls in this range");
    const f = frame(container);
    const svg = el("svg:svg", { viewBox: `0 0 ${f.width} ${f.height}`, preserveAspectRatio: "none", role: "img", "aria-label": name, "data-points": points.length });
    let max = 0;
    for (const s of series) for (const p of points) if (p[s.key] !== null && p[s.key] > max) max = p[s.key];
    max = niceMax(max);
    const axis = timeAxis(points, step);
    axes(svg, f, max, fmt, axis);
    const innerH = f.height - f.top - f.bottom;
    const yAt = (v) => f.top + innerH - (innerH * v) / max;
    const xOf = (p) => axis.x(f, Date.parse(p.start) + (step * 1000) / 2);
    series.forEach((s, si) => {
      // An empty bucket (null) breaks the line: neighbours across a gap are not joined.
      const coords = points.map((p) => (p[s.key] === null || p[s.key] === undefined ? null : [xOf(p), yAt(p[s.key])]));
      let d = "";
      coords.forEach((c, i) => { if (c) d += (i && coords[i - 1] ? " L" : " M") + c[0].toFixed(1) + " " + c[1].toFixed(1); });
      if (si === 0 && s.area) {
        const gid = "g-" + name.replace(/\W/g, "");
        svg.append(el("svg:defs", {}, el("svg:linearGradient", { id: gid, x1: 0, x2: 0, y1: 0, y2: 1 },
          el("svg:stop", { offset: "0%", "stop-color": s.color, "stop-opacity": 0.28 }),
          el("svg:stop", { offset: "100%", "stop-color": s.color, "stop-opacity": 0 }))));
        let run = [];
        const flush = () => { if (run.length) svg.append(el("svg:path", { d: `M${run[0][0]} ${yAt(0)} ` + run.map((c) => `L${c[0].toFixed(1)} ${c[1].toFixed(1)}`).join(" ") + ` L${run[run.length - 1][0]} ${yAt(0)} Z`, fill: `url(#${gid})`, stroke: "none" })); run = []; };
        coords.forEach((c) => (c ? run.push(c) : flush())); flush();
      }
      svg.append(el("svg:path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round", "stroke-linecap": "round", "data-series": s.key, "vector-effect": "non-scaling-stroke" }));
      coords.forEach((c, i) => { if (c && !(coords[i - 1] && coords[i + 1])) svg.append(el("svg:circle", { cx: c[0], cy: c[1], r: 2.5, fill: s.color })); });
    });
    hoverLayer(svg, f, points, axis, step, (evt, i) => showTip(evt, bucketTitle(points[i], step),
      [...series.map((s) => [s.color, s.label, fmt(points[i][s.key])]), ["var(--muted)", "calls", fmtInt(points[i].calls)]]));
    container.append(svg);
  }

  function barChart(container, points, key, color, fmt, step, name) {
    container.replaceChildren();
    if (!points.length || !points.some((p) => p.calls)) return emptyChart(container, "No calls in this range");
    const f = frame(container);
    const svg = el("svg:svg", { viewBox: `0 0 ${f.width} ${f.height}`, preserveAspectRatio: "none", role: "img", "aria-label": name, "data-points": points.length });
    const max = niceMax(Math.max(...points.map((p) => p[key] || 0)));
    const axis = timeAxis(points, step);
    axes(svg, f, max, fmt, axis);
    const innerH = f.height - f.top - f.bottom;
    const slot = (f.width - f.left - f.right) / points.length;
    const w = Math.max(1, Math.min(slot * 0.72, 28));
    for (const p of points) {
      const h = (innerH * (p[key] || 0)) / max;
      const x = axis.x(f, Date.parse(p.start) + (step * 1000) / 2);
      svg.append(el("svg:rect", { class: "bar", x: x - w / 2, y: f.top + innerH - h, width: w, height: Math.max(h, p[key] ? 1 : 0), rx: Math.min(3, w / 3), fill: color, "data-series": key, "data-start": p.start }));
    }
    hoverLayer(svg, f, points, axis, step, (evt, i) => showTip(evt, bucketTitle(points[i], step),
      [[color, name, fmt(points[i][key])], ["var(--muted)", "calls", fmtInt(points[i].calls)]]));
    container.append(svg);
  }

  /* ---------- navigation ---------- */
  function go(changes, push = true) {
    q = { ...q, ...changes };
    const params = new URLSearchParams();
    for (const k of KEYS) if (q[k] && !(k === "view" && q[k] === "overview")) params.set(k, q[k]);
    const url = params.toString() ? "?" + params : location.pathname;
    if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
    load();
  }
  window.addEventListener("popstate", () => { q = readQuery(); load(); });
  const link = (text, changes, cls) => el("a", { href: "?" + new URLSearchParams(Object.entries({ ...q, ...changes }).filter(([, v]) => v)), class: cls || null, text, on: { click: (e) => { e.preventDefault(); go(changes); } } });

  function header() {
    $("tabs").replaceChildren(...VIEWS.map(([view, label]) => {
      const on = q.view === view || (view === "overview" && (q.view === "function" || q.view === "trace"));
      return el("button", { class: on ? "on" : null, "data-tab": view, text: label, on: { click: () => go({ view, function: "", trace: "", span: "", session: "", type: "", in: "" }) } });
    }));
    const range = q.range || "24h";
    $("ranges").replaceChildren(...RANGES.map((r) => el("button", { class: r === range ? "on" : null, "data-range": r, text: r, on: { click: () => go({ range: r }) } })));
    for (const name of ["service", "environment"]) {
      const select = $(name);
      const values = (state.dims && state.dims[name + "s"]) || [];
      const current = q[name];
      const options = [...new Set([...values, ...(current ? [current] : [])])];
      select.replaceChildren(el("option", { value: "", text: "all" }), ...options.map((v) => el("option", { value: v, text: v, selected: v === current ? "selected" : null })));
      select.onchange = () => go({ [name]: select.value });
    }
    for (const section of document.querySelectorAll(".view")) section.hidden = section.dataset.view !== q.view;
    document.body.dataset.view = q.view;
  }

  /* ---------- fetching ---------- */
  class Refused extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  function since() { const r = q.range || "24h"; return r === "all" ? "" : r; }
  function scope(extra) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries({ service: q.service, environment: q.environment, ...extra })) if (v) params.set(k, v);
    return params.toString();
  }
  async function getJSON(path) {
    const headers = state.key ? { "X-API-Key": state.key } : {};
    const response = await fetch(path, { headers, cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const err = (body && body.error) || {};
      throw new Refused(response.status, err.code || `HTTP_${response.status}`, err.message || `HTTP ${response.status}`);
    }
    return body;
  }
  const analytics = (name, extra) => getJSON(`${ANALYTICS}/${name}?${scope(extra)}`);

  function notice(text, kind, withKey) {
    const box = el("div", { class: `notice ${kind || ""}`, "data-notice": kind || "info" }, el("p", { text }));
    if (withKey) {
      const input = el("input", { type: "password", placeholder: "API key", id: "key", autocomplete: "off" });
      box.append(el("form", { on: { submit: (e) => { e.preventDefault(); localStorage.setItem("sdk-telemetry-key", input.value); state.key = input.value; state.dims = null; load(); } } }, input, el("button", { type: "submit", text: "Open" })));
    }
    $("notice").replaceChildren(box);
  }
  const clearNotice = () => $("notice").replaceChildren();

  function finish(status) {
    document.body.dataset.state = status;
    document.body.dataset.ready = "true";
    $("live").className = status === "ok" ? "live" : "live stale";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB", { timeZone: "UTC" }) + " UTC";
  }

  let loading = 0;
  async function load(initial) {
    const ticket = ++loading;
    state.empty = false;
    header();
    try {
      if (q.range && !RANGES.includes(q.range)) throw new Refused(400, "INVALID_QUERY", `range: expected one of ${RANGES.join(", ")}, got '${q.range}'`);
      if (!state.dims) state.dims = await analytics("dimensions").catch((e) => { if (e.status === 401) throw e; return null; });
      header();
      clearNotice();
      const view = q.view;
      if (view === "overview") await overview(initial);
      else if (view === "function") await functionView();
      else if (view === "trace") await traceView();
      else if (view === "errors") await errorsView();
      else if (view === "sessions") await sessionsView();
      else if (view === "analyses") await analysesView();
      if (ticket !== loading) return;
      finish(state.empty ? "empty" : "ok");
    } catch (err) {
      if (ticket !== loading) return;
      if (!(err instanceof Refused)) { $("live").className = "live stale"; notice(`Could not reach the server: ${err.message}`, "error"); return finish("offline"); }
      for (const section of document.querySelectorAll(".view")) section.hidden = true;
      if (err.status === 401 && err.code === "INVALID_API_KEY") { notice("This API key is not accepted by the server. Enter the right key.", "error", true); return finish("wrong-key"); }
      if (err.status === 401) { notice("This dashboard needs an API key.", "info", true); return finish("needs-key"); }
      if (err.code === "NO_STORE") { notice("No telemetry recorded yet: " + err.message.replace(/^no telemetry store at /, "there is no store at "), "info"); return finish("empty"); }
      notice(err.message, "error");
      finish("error");
    }
  }

  /* ---------- overview ---------- */
  function cards(target, t, count) {
    const unit = rateUnit(t.throughput_per_s || 0);
    const list = [
      ["Calls", fmtInt(t.calls), count, "var(--accent)"],
      ["Throughput", fmtRate(t[rateKey(unit)]), unit === "s" ? "calls per second" : "calls per minute", "var(--p50)", "/" + unit],
      ["Error rate", fmtPct(t.error_rate), `${fmtInt(t.errors)} errors`, "var(--error)"],
      ["p50", fmtMs(t.p50_ms), "median latency", "var(--p50)"],
      ["p95", fmtMs(t.p95_ms), "95th percentile", "var(--p95)"],
      ["p99", fmtMs(t.p99_ms), `max ${fmtMs(t.max_ms)}`, "var(--p99)"],
    ];
    target.replaceChildren(...list.map(([label, value, sub, color, u]) =>
      el("div", { class: "kpi", style: `--c:${color}`, "data-kpi": label.toLowerCase().replace(" ", "-") },
        el("div", { class: "label", text: label }), el("div", { class: "value" }, value, u ? el("small", { text: u }) : null), el("div", { class: "sub", text: sub }))));
    return unit;
  }

  function charts(d, latency, throughput, errorRate, legend, unitLabel) {
    const step = d.step_seconds;
    const percentiles = ["p50", "p95", "p99"].map((k, i) => ({ key: `${k}_ms`, label: k, color: COLORS[k], area: i === 0 }));
    lineChart(latency, d.series, percentiles, fmtMs, step, "latency");
    legend.replaceChildren(...percentiles.map((s) => el("span", {}, el("i", { style: `background:${s.color}` }), s.label)));
    const unit = rateUnit((d.totals || {}).throughput_per_s || 0);
    unitLabel.textContent = `calls / ${unit} · ${fmtDuration(step)} buckets`;
    barChart(throughput, d.series, rateKey(unit), "var(--accent)", fmtRate, step, `calls/${unit}`);
    if (errorRate) lineChart(errorRate, d.series, [{ key: "error_rate", label: "error rate", color: "var(--error)", area: true }], fmtPct, step, "errors");
  }

  async function overview(initial) {
    const params = new URLSearchParams();
    for (const k of ["range", "service", "environment", "function", "steps"]) if (q[k]) params.set(k, q[k]);
    const d = initial || (await getJSON(API + (params.toString() ? "?" + params : "")));
    if (d.error) throw new Refused(400, "INVALID_QUERY", d.error);
    state.last = d;
    state.empty = !!d.empty;
    if (d.empty) {
      notice(`No telemetry recorded yet — the store ${d.store} does not exist. Point an SDK at this server and its calls will appear here.`, "info");
      $("kpis").replaceChildren();
      for (const id of ["latency", "throughput", "error-rate"]) emptyChart($(id), "No calls yet");
      for (const id of ["functions"]) $(id).replaceChildren();
      $("funnel").replaceChildren(el("div", { class: "empty small", text: "No journey yet" }));
      $("top-errors").replaceChildren(el("div", { class: "empty small", text: "No errors" }));
      alertsPanel(d.alerts);
      return;
    }
    $("store").textContent = d.store ? d.store.split("/").pop() : "";
    $("store").title = d.store || "";
    if (d.notice) notice(d.notice, "warning");
    cards($("kpis"), d.totals || {}, `${fmtInt(d.functions.length)} functions`);
    charts(d, $("latency"), $("throughput"), $("error-rate"), $("latency-legend"), $("throughput-unit"));
    functionsTable(d);
    funnelPanel($("funnel"), $("funnel-note"), d.funnel, d.funnel_auto);
    alertsPanel(d.alerts);
    errorList($("top-errors"), d.top_errors);
  }

  function functionsTable(d) {
    const max = Math.max(1, ...d.functions.map((r) => r.calls));
    const head = el("thead", {}, el("tr", {}, ...["function", "calls", "errors", "error rate", "p50", "p95", "p99"].map((h) => el("th", { text: h }))));
    const body = el("tbody", {}, ...d.functions.map((r) =>
      el("tr", { class: r.function === d.selected ? "selected" : null, "data-function": r.function, on: { click: () => go({ view: "function", function: r.function }) } },
        el("td", { class: "fn", text: r.function }),
        el("td", {}, el("div", { class: "bar-cell" }, el("span", { class: "bar", style: `width:${Math.max(2, (60 * r.calls) / max)}px` }), fmtInt(r.calls))),
        el("td", { text: fmtInt(r.errors) }),
        el("td", { class: "rate" + (r.error_rate > 0.05 ? " bad" : ""), text: fmtPct(r.error_rate) }),
        el("td", { text: fmtMs(r.p50_ms) }), el("td", { text: fmtMs(r.p95_ms) }), el("td", { text: fmtMs(r.p99_ms) }))));
    $("functions").replaceChildren(head, body);
    const picker = $("function");
    picker.replaceChildren(el("option", { value: "", text: "all functions" }), ...d.functions.map((r) => el("option", { value: r.function, text: r.function, selected: r.function === d.selected ? "selected" : null })));
    picker.onchange = () => go({ function: picker.value }, false);
  }

  function funnelPanel(box, note, f, auto) {
    note.textContent = f ? (auto ? "main journey" : "per session") + ` · ${Math.round(f.window_seconds / 60)} min window` : "";
    if (!f || !f.entered) return box.replaceChildren(el("div", { class: "empty small", text: "No journey with two steps yet" }));
    box.replaceChildren(...f.steps.map((s, i) =>
      el("div", { class: "step", "data-step": s.step, "data-count": s.count },
        el("div", { class: "row" }, el("span", { class: "name", text: `${i + 1}. ${s.step}` }), el("b", { text: `${fmtInt(s.count)} · ${fmtPct(s.conversion)}` })),
        el("div", { class: "track" }, el("div", { class: "fill", style: `width:${Math.max(1.5, 100 * s.conversion)}%` })),
        i && s.dropped ? el("div", { class: "drop", text: `−${fmtInt(s.dropped)} dropped (${fmtPct(1 - s.from_previous)})` }) : null)));
  }

  function alertsPanel(a) {
    const box = $("alerts");
    $("alerts-source").textContent = a && a.source ? a.source.split("/").pop() : "";
    if (!a || !a.alerts || !a.alerts.length) return box.replaceChildren(el("div", { class: "empty small", text: "No monitors configured (serve --monitors rules.yaml)" }));
    const order = { firing: 0, pending: 1, resolved: 2, ok: 3 };
    const sorted = [...a.alerts].sort((x, y) => order[x.state] - order[y.state] || x.name.localeCompare(y.name));
    box.replaceChildren(...sorted.map((r) =>
      el("div", { class: `alert state-${r.state}`, "data-alert": r.name, "data-state": r.state },
        el("div", { class: "row" }, el("span", { class: "name", text: r.name }), el("span", { class: "pill", text: r.state })),
        el("div", { class: "desc", text: r.rule.description }),
        el("div", { class: "row desc" }, el("span", { class: "value", text: `now ${r.value_text}` }), el("span", { text: r.episodes ? `${r.episodes} episode${r.episodes > 1 ? "s" : ""}` : "" })))));
  }

  function errorList(box, groups, selected) {
    if (!groups.length) return box.replaceChildren(el("div", { class: "empty small", text: "No errors in this range" }));
    box.replaceChildren(...groups.map((e) =>
      el("div", { class: "error-item" + (selected && selected.type === e.type && selected.in === e.function ? " selected" : ""), "data-error": e.type, "data-in": e.function, on: { click: () => go({ view: "errors", type: e.type, in: e.function }) } },
        el("span", { class: "type", text: e.type }), el("span", { class: "where", text: e.function }), el("span", { class: "count", text: fmtInt(e.count) }),
        el("span", { class: "msg", title: e.sample_message, text: e.sample_message || "" }))));
  }

  /* ---------- a function: figures and recent calls ---------- */
  function crumbs(target, parts) {
    target.replaceChildren(...parts.flatMap((p, i) => (i ? [el("span", { class: "sep", text: "›" }), p] : [p])));
  }

  async function functionView() {
    const fn = q.function;
    const [perf, calls] = await Promise.all([
      analytics("performance", { function: fn, since: since() }),
      analytics("calls", { function: fn, since: since(), limit: 50 }),
    ]);
    crumbs($("function-crumbs"), [link("Overview", { view: "overview", function: "" }), el("b", { class: "fn", text: fn })]);
    cards($("function-kpis"), perf.summary, fn);
    const d = { series: perf.buckets, step_seconds: perf.step_seconds, totals: perf.summary };
    charts(d, $("function-latency"), $("function-throughput"), null, $("function-legend"), $("function-throughput-unit"));
    const head = el("thead", {}, el("tr", {}, ...["time (UTC)", "duration", "status", "session", "user", "trace"].map((h) => el("th", { text: h }))));
    const rows = calls.calls.map((c) => el("tr", { "data-trace": c.trace_id, "data-status": c.status, on: { click: () => go({ view: "trace", trace: c.trace_id, span: c.span_id }) } },
      el("td", { text: fmtWhen(c.timestamp) }), el("td", { text: fmtMs(c.duration_ms) }),
      el("td", { class: c.status === "Error" ? "rate bad" : "", text: c.status === "Error" ? c.error_type || "Error" : "ok" }),
      el("td", { class: "mono", text: c.session_id || "–" }), el("td", { text: c.user_id || "–" }), el("td", { class: "mono", text: c.trace_id.slice(0, 12) + "…" })));
    $("calls").replaceChildren(head, el("tbody", {}, ...rows));
    if (!rows.length) $("calls").append(el("caption", { text: "No calls of this function in this range" }));
  }

  /* ---------- a trace: the waterfall ---------- */
  async function traceView() {
    const t = await analytics(`traces/${encodeURIComponent(q.trace)}`);
    const root = t.spans[0] || {};
    crumbs($("trace-crumbs"), [link("Overview", { view: "overview", function: "", trace: "", span: "" }),
      root.call ? link(root.name, { view: "function", function: root.name, trace: "", span: "" }) : el("span", { text: root.name }),
      el("b", { class: "mono", text: "trace " + t.trace_id.slice(0, 16) + "…" })]);
    $("trace-title").textContent = `Trace ${t.trace_id}`;
    $("trace-summary").textContent = `${fmtWhen(t.start)} UTC · ${fmtMs(t.duration_ms)} · ${t.spans.length} spans · ${t.errors} errors`;
    const total = Math.max(t.duration_ms, 0.001);
    const chosen = t.spans.find((s) => s.span_id === q.span) || t.spans.find((s) => s.status === "Error") || root;
    $("waterfall").replaceChildren(
      el("div", { class: "wf-head" }, el("span", { text: "span" }), el("span", { class: "wf-scale" }, el("span", { text: "0" }), el("span", { text: fmtMs(total / 2) }), el("span", { text: fmtMs(total) }))),
      ...t.spans.map((s) => el("div", { class: "wf-row" + (s === chosen ? " selected" : "") + (s.status === "Error" ? " failed" : ""), "data-span": s.span_id, "data-depth": s.depth, "data-kind": s.call ? "call" : "other", on: { click: () => go({ span: s.span_id }, false) } },
        el("span", { class: "wf-name", style: `padding-left:${8 + 16 * s.depth}px`, title: s.name },
          el("span", { class: "wf-label", text: s.name }), el("small", { text: s.call ? s.service || "" : s.scope.replace("opentelemetry.instrumentation.", "") })),
        el("span", { class: "wf-track" }, el("span", { class: "wf-bar" + (s.call ? "" : " other"), style: `left:${(100 * s.offset_ms) / total}%;width:${Math.max(0.4, (100 * s.duration_ms) / total)}%` }),
          el("span", { class: "wf-dur", style: `left:${Math.min(88, (100 * (s.offset_ms + s.duration_ms)) / total)}%`, text: fmtMs(s.duration_ms) })))));
    spanDetails(chosen);
  }

  function spanDetails(s) {
    const box = $("span-details");
    if (!s || !s.span_id) return box.replaceChildren();
    const rows = Object.entries(s.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
    const facts = [["span id", s.span_id], ["parent", s.parent_span_id || "–"], ["kind", s.kind], ["scope", s.scope], ["service", s.service || "–"],
      ["status", s.status + (s.status_message ? `: ${s.status_message}` : "")], ["start", fmtWhen(s.start) + " UTC"], ["duration", fmtMs(s.duration_ms)]];
    const stacks = (s.events || []).filter((e) => e.attributes && e.attributes["exception.stacktrace"]);
    box.replaceChildren(
      el("div", { class: "card-head" }, el("h2", { text: s.name }), s.session_id ? link(`session ${s.session_id}`, { view: "sessions", session: s.session_id, trace: "", span: "" }, "pill-link") : null),
      el("div", { class: "details" },
        el("table", { class: "kv", id: "span-facts" }, el("tbody", {}, ...facts.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v }))))),
        el("table", { class: "kv", id: "span-attributes" }, el("thead", {}, el("tr", {}, el("th", { text: "attribute" }), el("th", { text: "value" }))),
          el("tbody", {}, ...rows.map(([k, v]) => el("tr", { "data-attribute": k }, el("th", { text: k }), el("td", { text: typeof v === "string" ? v : JSON.stringify(v) })))))),
      ...stacks.map((e) => el("pre", { class: "stack", text: e.attributes["exception.stacktrace"] })));
  }

  /* ---------- errors: groups and occurrences ---------- */
  async function errorsView() {
    const groups = (await analytics("errors", { since: since(), limit: 50 })).errors;
    const selected = q.type ? { type: q.type, in: q.in } : groups[0] ? { type: groups[0].type, in: groups[0].function } : null;
    errorList($("error-groups"), groups, selected);
    const box = $("occurrences");
    if (!selected) { $("occurrences-title").textContent = "Occurrences"; return box.replaceChildren(el("div", { class: "empty small", text: "No errors in this range" })); }
    const found = (await analytics("errors/occurrences", { type: selected.type, function: selected.in, since: since(), limit: 20 })).occurrences;
    $("occurrences-title").textContent = `${selected.type} in ${selected.in || "any function"} · latest ${found.length}`;
    box.replaceChildren(...found.map((o, i) => el("details", { class: "occurrence", open: i === 0 ? "open" : null, "data-trace": o.trace_id },
      el("summary", {}, el("span", { class: "when", text: fmtWhen(o.timestamp) }), el("span", { class: "msg", text: o.message || o.error_type }),
        o.session_id ? link(`session ${o.session_id}`, { view: "sessions", session: o.session_id }, "pill-link") : null,
        link("trace", { view: "trace", trace: o.trace_id, span: o.span_id }, "pill-link")),
      o.stacktrace ? el("pre", { class: "stack", text: o.stacktrace }) : el("p", { class: "muted", text: o.propagated ? "raised through an inner call, which recorded the stack" : "no stack recorded" }))));
    if (!found.length) box.replaceChildren(el("div", { class: "empty small", text: "No occurrences in this range" }));
  }

  /* ---------- sessions ---------- */
  async function sessionsView() {
    const list = (await analytics("sessions", { since: since(), limit: 100 })).sessions;
    const current = q.session || (list[0] && list[0].session_id) || "";
    const head = el("thead", {}, el("tr", {}, ...["session", "user", "start (UTC)", "calls", "errors"].map((h) => el("th", { text: h }))));
    $("sessions").replaceChildren(head, el("tbody", {}, ...list.map((s) => el("tr", { class: s.session_id === current ? "selected" : null, "data-session": s.session_id, on: { click: () => go({ session: s.session_id }) } },
      el("td", { class: "mono", text: s.session_id }), el("td", { text: s.user_id || "–" }), el("td", { text: fmtWhen(s.start) }),
      el("td", { text: fmtInt(s.calls) }), el("td", { class: s.errors ? "rate bad" : "", text: fmtInt(s.errors) })))));
    const box = $("timeline");
    if (!current) { $("timeline-title").textContent = "Session"; $("timeline-summary").textContent = ""; return box.replaceChildren(el("div", { class: "empty small", text: "No sessions in this range" })); }
    const s = await analytics(`sessions/${encodeURIComponent(current)}`);
    $("timeline-title").textContent = `Session ${s.session_id}`;
    $("timeline-summary").textContent = `${s.user_id || "no user"} · ${s.service || ""} ${s.environment ? "· " + s.environment : ""} · ${s.calls} calls · ${s.errors} errors · ${s.events} events`;
    const t0 = Date.parse(s.start);
    box.replaceChildren(...s.items.map((item) => {
      const offset = "+" + fmtDuration((Date.parse(item.timestamp) - t0) / 1000);
      if (item.kind === "event")
        return el("div", { class: "tl-item event", "data-kind": "event", "data-name": item.name || "" }, el("span", { class: "tl-time", text: offset }), el("span", { class: "tl-dot" }),
          el("span", { class: "tl-name", text: item.name || "event" }), el("span", { class: "muted", text: item.body || "" }));
      return el("div", { class: "tl-item call" + (item.status === "Error" ? " failed" : "") + (item.parent_span_id ? " nested" : ""), "data-kind": "call", "data-name": item.function, on: { click: () => go({ view: "trace", trace: item.trace_id, span: item.span_id }) } },
        el("span", { class: "tl-time", text: offset }), el("span", { class: "tl-dot" }), el("span", { class: "tl-name fn", text: item.function }),
        el("span", { class: "muted", text: fmtMs(item.duration_ms) + (item.status === "Error" ? ` · ${item.error_type || "Error"}: ${item.message || ""}` : "") }));
    }));
  }

  /* ---------- analyses: funnel, journeys, retention, adoption ---------- */
  // Journeys cover at most the range's last week: every session's whole path is the costliest question.
  const JOURNEYS_LAST = "7d";
  function periodFor() {
    const seconds = RANGE_SECONDS[q.range || "24h"];
    if (seconds && seconds <= 6 * 3600) return ["hour", Math.max(2, Math.ceil(seconds / 3600))];
    if (seconds && seconds <= 86400) return ["hour", 24];
    if (seconds && seconds <= 7 * 86400) return ["day", 7];
    return ["week", 8];
  }

  async function analysesView() {
    const [period, periods] = periodFor();
    const params = new URLSearchParams();
    for (const k of ["range", "service", "environment", "steps"]) if (q[k]) params.set(k, q[k]);
    const [d, paths, kept, adopted] = await Promise.all([
      getJSON(API + (params.toString() ? "?" + params : "")),
      analytics("journeys", { since: since(), max_steps: 5, limit: 8, last: JOURNEYS_LAST }),
      analytics("retention", { since: since(), by: "user", period, periods }),
      analytics("adoption", { since: since(), by: "session", period }),
    ]);
    state.empty = !!d.empty;
    funnelPanel($("analyses-funnel"), $("analyses-funnel-note"), d.funnel, d.funnel_auto);
    journeysPanel(paths);
    retentionPanel(kept);
    adoptionPanel(adopted);
  }

  function journeysPanel(j) {
    // Cut when the range is longer and the answer spans the whole week (less: all the data there is).
    const seconds = RANGE_SECONDS[q.range || "24h"];
    const span = Date.parse(j.time_range.end) - Date.parse(j.time_range.start);
    const cut = (!seconds || seconds > 7 * 86400) && span >= 7 * 86400e3 - 1e3 ? " · the range's last 7 days" : "";
    $("journeys-note").textContent = `${fmtInt(j.sessions)} sessions${cut}`;
    const box = $("journeys");
    if (!j.paths.length) return box.replaceChildren(el("div", { class: "empty small", text: "No sessions in this range" }));
    box.replaceChildren(...j.paths.map((p) => el("div", { class: "journey", "data-count": p.count },
      el("div", { class: "path" }, ...p.path.flatMap((step, i) => [i ? el("span", { class: "arrow", text: "→" }) : null, el("span", { class: "chip", text: step })])),
      el("div", { class: "row" }, el("div", { class: "track" }, el("div", { class: "fill", style: `width:${Math.max(1.5, 100 * p.share)}%` })), el("b", { text: `${fmtInt(p.count)} · ${fmtPct(p.share)}` })))),
    el("div", { class: "exits muted", text: "sessions end after: " + j.exits.slice(0, 4).map((e) => `${e.function} ${fmtPct(e.share)}`).join(" · ") }));
  }

  function retentionPanel(r) {
    $("retention-note").textContent = `users by first ${r.period} · blank: not yet`;
    const n = r.periods;
    const head = el("thead", {}, el("tr", {}, el("th", { text: "cohort" }), el("th", { text: "users" }), ...Array.from({ length: n }, (_, i) => el("th", { text: `+${i}` }))));
    const label = (iso) => { const d = new Date(iso); return r.period === "hour" ? `${fmtDay(d)} ${fmtClock(d)}` : fmtDay(d); };
    const body = el("tbody", {}, ...r.cohorts.map((c) => el("tr", { "data-cohort": c.cohort },
      el("td", { text: label(c.cohort) }), el("td", { text: fmtInt(c.size) }),
      ...c.rates.map((rate) => rate === null
        ? el("td", { class: "cell future", "data-rate": "" })
        : el("td", { class: "cell", "data-rate": rate.toFixed(4), style: `background:rgba(124,140,255,${(0.12 + 0.7 * rate).toFixed(2)})`, text: fmtPct(rate).replace(".0%", "%") })))));
    $("retention").replaceChildren(head, body);
    if (!r.cohorts.length) $("retention").append(el("caption", { text: "No users (enduser.id) in this range" }));
  }

  function sparkline(values) {
    const w = 90, h = 22, max = Math.max(0.0001, ...values);
    const pts = values.map((v, i) => `${values.length === 1 ? w / 2 : (i * w) / (values.length - 1)},${h - 2 - ((h - 4) * v) / max}`);
    return el("svg:svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, width: w, height: h }, el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: "var(--p50)", "stroke-width": 1.6 }));
  }

  function adoptionPanel(a) {
    $("adoption-note").textContent = `share of ${fmtInt(a.active)} active ${a.by}s per ${a.period}`;
    const arrows = { up: "↑ up", down: "↓ down", stable: "→ stable" };
    const head = el("thead", {}, el("tr", {}, ...["function", "share", `per ${a.period}`, "trend"].map((h) => el("th", { text: h }))));
    $("adoption").replaceChildren(head, el("tbody", {}, ...a.features.map((f) => el("tr", { "data-function": f.function, "data-trend": f.trend.direction },
      el("td", { class: "fn", text: f.function }), el("td", { text: fmtPct(f.share) }), el("td", {}, sparkline(f.per_period.map((p) => p.share))),
      el("td", { class: `trend ${f.trend.direction}`, title: f.trend.reason, text: arrows[f.trend.direction] })))));
  }

  /* ---------- start ---------- */
  function keyFromAddress() {
    const hashKey = new URLSearchParams(location.hash.slice(1)).get("key");
    if (hashKey) localStorage.setItem("sdk-telemetry-key", hashKey);
    return hashKey;
  }

  function start() {
    const initial = JSON.parse($("initial").textContent);
    state.key = keyFromAddress() || localStorage.getItem("sdk-telemetry-key");
    window.addEventListener("hashchange", () => { const k = keyFromAddress(); if (k) { state.key = k; state.dims = null; load(); } });
    if (initial && initial.services) state.dims = { services: initial.services, environments: initial.environments };
    load(q.view === "overview" && initial ? initial : null);
    state.timer = setInterval(() => document.hidden || q.view === "trace" || load(), REFRESH_MS);
    let resizing;
    window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(() => load(q.view === "overview" ? state.last : null), 150); });
  }

  start();
})();
