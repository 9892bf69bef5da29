/* tsbandit dashboard. No dependencies: the charts are SVG built here.
 *
 * Reads (relative to the page, so it works behind a path prefix):
 *   v1/bandits, v1/bandits/{name}, v1/bandits/{name}/stats, v1/bandits/{name}/traffic,
 *   v1/bandits/{name}/report (shown on 200, hidden otherwise).
 * Bandits with several metrics: dashboard_metrics.js draws their metrics, constraints and
 * Pareto front (the arms' densities, intervals and P(best) here are then the objective's).
 * Densities: the Beta pdf for Beta-Bernoulli arms (alpha, beta from /stats); for other models
 * a normal approximation with the posterior mean and sd = (upper - lower) / (2 z).
 */
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#bab0ac"];
const LEVEL = 0.95;
const Z = 1.959963984540054; // two-sided 95%
const KEY = "tsbandit-api-key";

const state = { bandit: null, bandits: [], updates: 0, timer: null, busy: false, again: false };
const $ = (id) => document.getElementById(id);

// ----- maths -------------------------------------------------------------------------------
const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028,
  771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
  9.9843695780195716e-6, 1.5056327351493116e-7];

function lgamma(x) {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

function betaLogPdf(x, a, b) {
  return (a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x) - (lgamma(a) + lgamma(b) - lgamma(a + b));
}

function normalLogPdf(x, m, s) {
  const z = (x - m) / s;
  return -0.5 * z * z - Math.log(s * Math.sqrt(2 * Math.PI));
}

/** Per arm: {logpdf(x), mean, sd, lo, hi (support)} */
function densityModel(arm) {
  if (arm.alpha != null && arm.beta != null) {
    const a = arm.alpha, b = arm.beta, n = a + b;
    return { exact: true, mean: a / n, sd: Math.sqrt(a * b / (n * n * (n + 1))), lo: 0, hi: 1,
      logpdf: (x) => betaLogPdf(x, a, b) };
  }
  const sd = Math.max((arm.upper - arm.lower) / (2 * Z), 1e-12);
  return { exact: false, mean: arm.mean, sd, lo: -Infinity, hi: Infinity,
    logpdf: (x) => normalLogPdf(x, arm.mean, sd) };
}

// ----- formatting --------------------------------------------------------------------------
function fmt(x, digits = 3) {
  if (x == null || !Number.isFinite(x)) return "–";
  const ax = Math.abs(x);
  if (ax !== 0 && (ax < 1e-3 || ax >= 1e6)) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}
const pct = (p) => (p == null ? "–" : (100 * p).toFixed(p > 0.001 && p < 0.999 ? 1 : 2) + "%");
const count = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));

function niceTicks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / Math.max(n, 1), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(12));
  return out;
}

function timeLabel(t, span) {
  const d = new Date(t * 1000), p = (v) => String(v).padStart(2, "0");
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (span > 2 * 86400) return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
  return span < 600 ? `${hm}:${p(d.getSeconds())}` : hm;
}

// ----- SVG helpers -------------------------------------------------------------------------
function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function svgFor(container, height) {
  const width = Math.max(260, Math.floor(container.clientWidth || 600));
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  container.replaceChildren(svg);
  return { svg, width, height };
}

function legend(container, arms) {
  const ul = document.createElement("ul");
  ul.className = "legend";
  arms.forEach((a) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = a.color;
    li.append(sw, document.createTextNode(a.arm));
    ul.append(li);
  });
  container.append(ul);
}

function xAxis(svg, scale, ticks, y, label, formatter = fmt) {
  svg.append(el("line", { class: "axis", x1: scale(ticks[0]), x2: scale(ticks[ticks.length - 1]), y1: y, y2: y }));
  ticks.forEach((t) => {
    svg.append(el("line", { class: "grid-line", x1: scale(t), x2: scale(t), y1: 8, y2: y }));
    svg.append(el("text", { x: scale(t), y: y + 14, "text-anchor": "middle" }, formatter(t)));
  });
  if (label) svg.append(el("text", { x: scale(ticks[ticks.length - 1]), y: y + 28, "text-anchor": "end" }, label));
}

// ----- charts ------------------------------------------------------------------------------
function drawDensities(arms) {
  const box = $("density");
  const { svg, width } = svgFor(box, 250);
  const models = arms.map(densityModel);
  let lo = Math.min(...models.map((m) => m.mean - 4.5 * m.sd));
  let hi = Math.max(...models.map((m) => m.mean + 4.5 * m.sd));
  const exact = models.every((m) => m.exact);
  if (exact) { lo = Math.max(lo, 0); hi = Math.min(hi, 1); }
  if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
  const N = 240, left = 12, right = width - 12, top = 10, bottom = 210;
  const xs = Array.from({ length: N }, (_, i) => lo + (hi - lo) * (i + 0.5) / N);
  const curves = models.map((m) => xs.map((x) => (x > m.lo && x < m.hi ? Math.exp(m.logpdf(x)) : 0)));
  const ymax = Math.max(1e-300, ...curves.map((c) => Math.max(...c.filter(Number.isFinite))));
  const sx = (x) => left + (right - left) * (x - lo) / (hi - lo);
  const sy = (y) => bottom - (bottom - top) * Math.min(y / ymax, 1);
  xAxis(svg, sx, niceTicks(lo, hi, Math.max(3, Math.floor(width / 110))), bottom,
    exact ? "reward probability" : "expected reward");
  curves.forEach((c, k) => {
    const pts = c.map((y, i) => `${sx(xs[i]).toFixed(1)},${sy(Number.isFinite(y) ? y : ymax).toFixed(1)}`);
    const line = "M" + pts.join("L");
    const area = `${line}L${sx(xs[N - 1]).toFixed(1)},${bottom}L${sx(xs[0]).toFixed(1)},${bottom}Z`;
    svg.append(el("path", { d: area, fill: arms[k].color, "fill-opacity": 0.07, stroke: "none" }));
    const path = el("path", { class: "density", "data-arm": arms[k].arm, d: line, fill: "none",
      stroke: arms[k].color, "stroke-width": 2 });
    path.append(el("title", {}, `${arms[k].arm}: mean ${fmt(models[k].mean)}, sd ${fmt(models[k].sd)}`));
    svg.append(path);
    const mx = sx(models[k].mean);
    if (mx >= left && mx <= right) {
      svg.append(el("line", { x1: mx, x2: mx, y1: bottom, y2: bottom - 6, stroke: arms[k].color, "stroke-width": 2 }));
    }
  });
  legend(box, arms);
  $("density-note").textContent = exact
    ? "Exact Beta(α, β) posterior of each arm's reward probability; the tick on the axis is its mean."
    : "Normal approximation: each arm's posterior mean, with the spread of its 95% credible interval " +
      "(sd = width / 3.92). The exact posterior of this model is not a closed-form density here.";
}

function drawIntervals(arms) {
  const box = $("rate");
  const row = 38, top = 6;
  const { svg, width } = svgFor(box, top + row * arms.length + 30);
  let lo = Math.min(...arms.map((a) => a.lower)), hi = Math.max(...arms.map((a) => a.upper));
  const pad = (hi - lo) * 0.08 || 0.05;
  lo -= pad; hi += pad;
  if (arms.every((a) => a.alpha != null)) { lo = Math.max(lo, 0); hi = Math.min(hi, 1); }
  const left = 8, right = width - 8;
  const sx = (x) => left + (right - left) * (x - lo) / (hi - lo);
  const axisY = top + row * arms.length + 4;
  xAxis(svg, sx, niceTicks(lo, hi, Math.max(3, Math.floor(width / 100))), axisY);
  arms.forEach((a, k) => {
    const y = top + k * row;
    svg.append(el("text", { class: "label", x: left, y: y + 11 },
      `${a.arm}  ${fmt(a.mean)} [${fmt(a.lower)}, ${fmt(a.upper)}]  n=${count(a.pulls)}`));
    const cy = y + 24;
    svg.append(el("line", { x1: sx(a.lower), x2: sx(a.upper), y1: cy, y2: cy, stroke: a.color, "stroke-width": 4, "stroke-linecap": "round", "stroke-opacity": 0.55 }));
    svg.append(el("circle", { cx: sx(a.mean), cy, r: 5, fill: a.color, class: "mean", "data-arm": a.arm }));
  });
}

function drawProbBest(arms) {
  const box = $("best");
  const row = 34, top = 4;
  const { svg, width } = svgFor(box, top + row * arms.length + 4);
  const left = 8, right = width - 60;
  arms.forEach((a, k) => {
    const y = top + k * row;
    svg.append(el("text", { class: "label", x: left, y: y + 11 }, a.arm));
    svg.append(el("rect", { x: left, y: y + 16, width: right - left, height: 10, fill: "#eef0f3", rx: 3 }));
    svg.append(el("rect", { class: "prob-best", "data-arm": a.arm, x: left, y: y + 16,
      width: Math.max((right - left) * a.prob_best, a.prob_best > 0 ? 1 : 0), height: 10, fill: a.color, rx: 3 }));
    svg.append(el("text", { class: "label", x: width - 4, y: y + 25, "text-anchor": "end" }, pct(a.prob_best)));
  });
}

function drawTraffic(traffic, colorOf) {
  const box = $("traffic");
  const { svg, width } = svgFor(box, 220);
  const n = traffic.times.length, k = traffic.arms.length;
  const left = 34, right = width - 8, top = 8, bottom = 180;
  const bw = (right - left) / Math.max(n, 1);
  const sy = (v) => bottom - (bottom - top) * v;
  [0, 0.25, 0.5, 0.75, 1].forEach((v) => {
    svg.append(el("line", { class: v === 0 ? "axis" : "grid-line", x1: left, x2: right, y1: sy(v), y2: sy(v) }));
    svg.append(el("text", { x: left - 4, y: sy(v) + 4, "text-anchor": "end" }, `${v * 100}%`));
  });
  let total = 0, used = 0;
  for (let b = 0; b < n; b++) {
    const row = traffic.decisions[b], sum = row.reduce((s, v) => s + v, 0);
    total += sum;
    if (sum === 0) continue;
    used += 1;
    let acc = 0;
    for (let i = 0; i < k; i++) {
      if (!row[i]) continue;
      const share = row[i] / sum;
      const r = el("rect", { class: "share", x: left + b * bw, width: Math.max(bw - (bw > 4 ? 1 : 0), 0.5),
        y: sy(acc + share), height: sy(acc) - sy(acc + share), fill: colorOf(traffic.arms[i]) });
      r.append(el("title", {}, `${traffic.arms[i]}: ${row[i]} of ${sum} (${pct(share)}) from ${timeLabel(traffic.times[b], 0)}`));
      svg.append(r);
      acc += share;
    }
  }
  const span = traffic.bucket_seconds * n;
  const labels = Math.min(n, Math.max(2, Math.min(6, Math.floor(width / 120))));
  for (let j = 0; j < labels; j++) {
    const b = labels === 1 ? 0 : Math.round(j * (n - 1) / (labels - 1));
    const x = left + (b + 0.5) * bw;
    const anchor = labels === 1 ? "middle" : j === 0 ? "start" : j === labels - 1 ? "end" : "middle";
    svg.append(el("text", { x, y: bottom + 16, "text-anchor": anchor }, timeLabel(traffic.times[b], span)));
  }
  if (total === 0) svg.append(el("text", { class: "label", x: (left + right) / 2, y: 90, "text-anchor": "middle" }, "no decisions yet"));
  legend(box, traffic.arms.map((a) => ({ arm: a, color: colorOf(a) })));
  const age = Date.now() / 1000 - traffic.computed_at;
  $("traffic-note").textContent = `${count(total)} decisions in ${used} of ${n} buckets of ` +
    `${fmt(traffic.bucket_seconds)} s; share of the first-ranked arm, from the event log (all workers)` +
    (age > 3 ? `; read ${Math.round(age)} s ago (a long log is re-read less often).` : ".");
}

function drawTable(arms, totals) {
  const t = $("arms");
  const head = ["arm", "decisions", "rewarded", "reward sum", "mean", "95% interval", "P(best)"];
  const beta = arms.some((a) => a.alpha != null);
  if (beta) head.push("α", "β");
  const thead = document.createElement("thead"), tr = document.createElement("tr");
  head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; tr.append(th); });
  thead.append(tr);
  const tbody = document.createElement("tbody");
  const top = Math.max(...arms.map((a) => a.prob_best));
  arms.forEach((a) => {
    const r = document.createElement("tr");
    r.dataset.arm = a.arm;
    r.dataset.pulls = String(a.pulls);
    const cells = [a.arm, count(totals[a.arm]), count(a.pulls), fmt(a.rewards, 4), fmt(a.mean),
      `[${fmt(a.lower)}, ${fmt(a.upper)}]`, pct(a.prob_best)];
    if (beta) cells.push(fmt(a.alpha, 5), fmt(a.beta, 5));
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (i === 0) {
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.cssText = `display:inline-block;margin-right:.4rem;background:${a.color}`;
        td.prepend(sw);
      }
      if (i === 6 && a.prob_best === top) td.className = "best";
      r.append(td);
    });
    tbody.append(r);
  });
  t.replaceChildren(thead, tbody);
}

function drawReport(rep) {
  const panel = $("report-panel"), warn = $("srm-warning");
  if (!rep) { panel.hidden = true; warn.hidden = true; return; }
  panel.hidden = false;
  const box = $("report");
  box.replaceChildren();
  const verdict = document.createElement("p");
  verdict.className = "verdict" + (rep.decision.stop ? " stop" : "");
  const reason = rep.decision.reason.charAt(0).toUpperCase() + rep.decision.reason.slice(1);
  verdict.textContent = rep.decision.stop && rep.decision.winner
    ? `Winner: ${rep.decision.winner}. ${reason}` : reason;
  box.append(verdict);
  const dl = document.createElement("dl");
  dl.className = "kv";
  const add = (k, v) => { const dt = document.createElement("dt"), dd = document.createElement("dd"); dt.textContent = k; dd.textContent = v; dl.append(dt, dd); };
  add("metric", `${rep.metric} (${rep.method}${rep.draws ? `, ${count(rep.draws)} draws` : ""})`);
  add("rule", `P(best) ≥ ${rep.rule.prob_best ?? "–"}` + (rep.rule.expected_loss != null ? ` or loss ≤ ${rep.rule.expected_loss}` : "") + `, ≥ ${rep.rule.min_samples} per arm`);
  if (rep.lift) {
    const l = rep.lift, unit = l.relative ? " (relative)" : "";
    add("lift", `${l.treatment} vs ${l.control}${unit}: ${fmt(l.median)} [${fmt(l.low)}, ${fmt(l.high)}], P(> 0) = ${pct(l.prob_positive)}`);
  }
  const s = rep.srm;
  add("SRM", s.status === "not_checked" ? `not checked: ${s.reason}`
    : `${s.status}${s.p_value != null ? ` (p = ${fmt(s.p_value)}, ${s.method})` : ""}${s.reason ? ": " + s.reason : ""}`);
  box.append(dl);
  const table = document.createElement("table");
  const feasible = rep.arms.some((a) => a.prob_feasible != null); // several metrics
  table.innerHTML = "<thead><tr><th>arm</th><th>n</th><th>mean</th><th>interval</th><th>P(best)</th><th>expected loss</th>" +
    (feasible ? "<th>P(constraints hold)</th>" : "") + "</tr></thead>";
  const tb = document.createElement("tbody");
  rep.arms.forEach((a) => {
    const r = document.createElement("tr");
    [a.name, count(a.n), fmt(a.mean), `[${fmt(a.interval[0])}, ${fmt(a.interval[1])}]`, pct(a.prob_best), fmt(a.expected_loss)]
      .concat(feasible ? [pct(a.prob_feasible)] : [])
      .forEach((c) => { const td = document.createElement("td"); td.textContent = c; r.append(td); });
    tb.append(r);
  });
  table.append(tb);
  const wrap = document.createElement("div");
  wrap.className = "scroll";
  wrap.append(table);
  box.append(wrap);
  if (s.status === "mismatch") {
    warn.hidden = false;
    warn.textContent = `Sample ratio mismatch: the decisions per arm (${(s.observed || []).map(count).join(" / ")}) ` +
      `do not match the expected allocation (${(s.expected || []).map((v) => fmt(v, 4)).join(" / ")}), p = ${fmt(s.p_value)}. ` +
      "Check the assignment and the logging before trusting the comparison.";
  } else {
    warn.hidden = true;
  }
}

// ----- data --------------------------------------------------------------------------------
class HttpError extends Error {
  constructor(status, body) { super(body?.error?.detail || `HTTP ${status}`); this.status = status; }
}

async function api(path) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    throw new HttpError(r.status, body);
  }
  return r.json();
}

function renderNav() {
  const nav = $("bandits");
  nav.replaceChildren(...state.bandits.map((name) => {
    const a = document.createElement("a");
    a.href = `?bandit=${encodeURIComponent(name)}`;
    a.textContent = name;
    a.dataset.bandit = name;
    if (name === state.bandit) a.setAttribute("aria-current", "page");
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      state.bandit = name;
      history.pushState(null, "", a.href);
      refresh();
    });
    return a;
  }));
}

function setStatus(text, error = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

function contextFor(config) {
  // contextual models (linear, logistic): the posteriors shown are for one context vector, from
  // the ?context=1,0.5 parameter or the form; default all ones (an intercept-only user)
  const d = config.model?.n_features;
  const form = $("context-form");
  if (!d) { form.hidden = true; return null; }
  form.hidden = false;
  const given = new URLSearchParams(location.search).get("context");
  let x = given ? given.split(",").map(Number) : [];
  if (x.length !== d || !x.every(Number.isFinite)) x = Array(d).fill(1);
  if (document.activeElement !== $("context")) $("context").value = x.join(", ");
  $("context-dim").textContent = String(d);
  return x;
}

async function refresh() {
  if (state.busy) { state.again = true; return; } // e.g. a click during a refresh: run after it
  state.busy = true;
  clearTimeout(state.timer);
  try {
    state.bandits = (await api("v1/bandits")).bandits;
    const wanted = new URLSearchParams(location.search).get("bandit");
    const fallback = document.body.dataset.defaultBandit;
    const bandit = [wanted, state.bandit, fallback, state.bandits[0]].find((b) => b && state.bandits.includes(b)) || null;
    state.bandit = bandit;
    renderNav();
    $("auth").hidden = true;
    if (!bandit) {
      $("main").hidden = true;
      setStatus("no bandits yet: create one with POST /v1/bandits");
      return;
    }
    const name = encodeURIComponent(bandit);
    const config = await api(`v1/bandits/${name}`);
    const x = contextFor(config);
    const ctx = x ? x.map((v) => `&context=${encodeURIComponent(v)}`).join("") : "";
    const [stats, traffic, report] = await Promise.all([
      api(`v1/bandits/${name}/stats?level=${LEVEL}${ctx}`),
      api(`v1/bandits/${name}/traffic?buckets=60`),
      // absent (404), or not defined for this model (4xx): the panel is hidden
      x ? Promise.resolve(null) : api(`v1/bandits/${name}/report`).catch(() => null),
    ]);
    if (state.bandit !== bandit || state.again) return; // another bandit was picked meanwhile
    const order = new Map(config.arms.map((a, i) => [a, i]));
    const colorOf = (arm) => COLORS[(order.has(arm) ? order.get(arm) : order.size + traffic.arms.indexOf(arm)) % COLORS.length];
    const arms = stats.arms.map((a) => ({ ...a, color: colorOf(a.arm) }));
    const totals = Object.fromEntries(traffic.arms.map((a, i) => [a, traffic.totals.decisions[i]]));
    $("main").hidden = false;
    const summary = $("summary");
    summary.replaceChildren();
    [["bandit", bandit], ["model", config.model?.kind ?? "?"], ["rule", config.rule?.kind ?? "?"],
      ["arms", String(arms.length)], ["decisions", count(traffic.totals.decisions.reduce((s, v) => s + v, 0))],
      ["rewarded", count(arms.reduce((s, a) => s + a.pulls, 0))], ["model version", String(stats.model_version)]]
      .forEach(([k, v]) => { const span = document.createElement("span"); const b = document.createElement("b"); b.textContent = v; span.append(`${k} `, b); summary.append(span); });
    drawDensities(arms);
    drawIntervals(arms);
    drawProbBest(arms);
    drawTraffic(traffic, colorOf);
    drawTable(arms, totals);
    drawMetrics(config, stats, arms); // several metrics: dashboard_metrics.js (else hidden)
    drawReport(report);
    $("main").dataset.bandit = bandit; // after drawing: tests wait on these
    document.body.dataset.modelVersion = String(stats.model_version);
    state.updates += 1;
    document.body.dataset.updates = String(state.updates);
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) {
      $("auth").hidden = false;
      setStatus("API key needed", true);
    } else {
      setStatus(`refresh failed: ${err.message}`, true);
    }
  } finally {
    state.busy = false;
    if (state.again) {
      state.again = false;
      setTimeout(refresh, 0);
    } else {
      const seconds = parseFloat(document.body.dataset.refresh) || 5;
      state.timer = setTimeout(() => { if (!document.hidden) refresh(); else state.timer = setTimeout(refresh, 1000); }, seconds * 1000);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    refresh();
  });
  $("context-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const params = new URLSearchParams(location.search);
    params.set("context", $("context").value.split(",").map((v) => v.trim()).join(","));
    history.pushState(null, "", `?${params}`);
    $("context").blur();
    refresh();
  });
  window.addEventListener("popstate", () => { state.bandit = null; refresh(); });
  let resize = null;
  window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(refresh, 250); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
});
