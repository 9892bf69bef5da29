/* tsbandit dashboard: bandits with several metrics per decision. No dependencies.
 *
 * Drawn from GET v1/bandits/{name} (metrics, objective, constraints) and /stats (per metric per
 * arm: mean, low, high, n; per arm the objective; per constraint the probability it holds):
 *   - the Pareto front of the arms' posterior means: the objective against the first
 *     constraint's metric (else a metric outside the objective), the front highlighted;
 *   - each constraint's probability of holding, per arm;
 *   - every metric's posterior per arm (mean, 95% interval, observations).
 * Uses the helpers of dashboard.js (el, svgFor, xAxis, niceTicks, fmt, pct, count, $), which
 * loads after this file; drawMetrics is called by its refresh.
 */
"use strict";

/** Which points are on the Pareto front: y higher is better; x lower (or higher) is better. */
function paretoFront(points, xLowerIsBetter) {
  const better = (q, p) => (xLowerIsBetter ? q.x <= p.x : q.x >= p.x) && q.y >= p.y &&
    (q.x !== p.x || q.y !== p.y);
  return points.map((p) => !points.some((q) => better(q, p)));
}

/** The metric on the x axis: the first constraint's, else one outside the objective. */
function paretoAxis(config) {
  const cons = config.constraints || [];
  if (cons.length) {
    const c = cons[0], max = c.max != null;
    return { metric: c.metric, lowerIsBetter: max, bound: c.relative_to ? null : (max ? c.max : c.min),
      what: `${c.metric} ${max ? "≤" : "≥"} ${fmt(max ? c.max : c.min)}${c.relative_to ? ` vs ${c.relative_to}` : ""}` };
  }
  const names = Object.keys(config.metrics || {}), obj = Object.keys(config.objective || {});
  const metric = names.find((n) => !obj.includes(n)) || obj[1] || names[0];
  return { metric, lowerIsBetter: false, bound: null, what: null };
}

function span(values, pad = 0.08) {
  let lo = Math.min(...values), hi = Math.max(...values);
  const p = (hi - lo) * pad || Math.abs(hi) * 0.1 || 0.05;
  lo -= p; hi += p;
  return [lo, hi];
}

function drawPareto(config, stats, arms) {
  const box = $("pareto");
  const ax = paretoAxis(config);
  const pts = arms.map((a) => ({ arm: a.arm, color: a.color,
    x: stats.metrics[ax.metric][a.arm].mean, y: stats.objective[a.arm].mean }));
  const front = paretoFront(pts, ax.lowerIsBetter);
  const { svg, width } = svgFor(box, 280);
  const left = 52, right = width - 16, top = 12, bottom = 232;
  const [xlo, xhi] = span(pts.map((p) => p.x).concat(ax.bound != null ? [ax.bound] : []));
  const [ylo, yhi] = span(pts.map((p) => p.y));
  const sx = (x) => left + (right - left) * (x - xlo) / (xhi - xlo);
  const sy = (y) => bottom - (bottom - top) * (y - ylo) / (yhi - ylo);
  xAxis(svg, sx, niceTicks(xlo, xhi, Math.max(3, Math.floor(width / 120))), bottom);
  svg.append(el("text", { x: right, y: bottom + 28, "text-anchor": "end" },
    `${ax.metric}, mean (${ax.lowerIsBetter ? "lower" : "higher"} is better)`));
  niceTicks(ylo, yhi, 5).forEach((t) => {
    svg.append(el("line", { class: "grid-line", x1: left, x2: right, y1: sy(t), y2: sy(t) }));
    svg.append(el("text", { x: left - 6, y: sy(t) + 4, "text-anchor": "end" }, fmt(t)));
  });
  svg.append(el("text", { class: "label", x: left, y: top - 2 }, "objective (posterior mean)"));
  if (ax.bound != null && ax.bound >= xlo && ax.bound <= xhi) {
    svg.append(el("line", { class: "bound", x1: sx(ax.bound), x2: sx(ax.bound), y1: top, y2: bottom }));
    svg.append(el("text", { x: sx(ax.bound) + 4, y: top + 26 }, `limit ${fmt(ax.bound)}`));
  }
  const onFront = pts.filter((p, i) => front[i]).sort((p, q) => p.x - q.x);
  if (onFront.length > 1) {
    svg.append(el("path", { class: "front", d: "M" + onFront.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("L") }));
  }
  pts.forEach((p, i) => {
    const c = el("circle", { class: "pareto-point", "data-arm": p.arm, "data-front": String(front[i]),
      cx: sx(p.x), cy: sy(p.y), r: front[i] ? 7 : 5, fill: front[i] ? p.color : "#fff",
      stroke: p.color, "stroke-width": 2 });
    c.append(el("title", {}, `${p.arm}: objective ${fmt(p.y)}, ${ax.metric} ${fmt(p.x)}${front[i] ? " (Pareto front)" : ""}`));
    svg.append(c);
    svg.append(el("text", { class: "label", x: sx(p.x) + 9, y: sy(p.y) - 6 }, p.arm));
  });
  $("pareto-note").textContent = "Each arm's posterior means: the objective against " +
    `${ax.metric}${ax.what ? ` (constraint ${ax.what})` : ""}. Filled points and the line: the ` +
    "Pareto front (no other arm is at least as good on both and better on one).";
}

function drawConstraintProbs(stats, arms) {
  const box = $("constraints");
  const cons = stats.constraints || [];
  if (!cons.length) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = "This bandit has no constraints.";
    box.replaceChildren(p);
    return;
  }
  const row = 26, head = 20;
  const { svg, width } = svgFor(box, cons.length * (head + row * arms.length) + 4);
  const left = 8, bar = 90, right = width - 60;
  let y = 2;
  cons.forEach((c) => {
    const bound = c.max != null ? `≤ ${fmt(c.max)}` : `≥ ${fmt(c.min)}`;
    svg.append(el("text", { class: "label", x: left, y: y + 13 },
      `${c.metric} ${bound}${c.relative_to ? ` relative to ${c.relative_to}` : ""}`));
    y += head;
    arms.forEach((a) => {
      const p = c.probability[a.arm];
      svg.append(el("text", { x: left, y: y + 13 }, a.arm));
      svg.append(el("rect", { x: left + bar, y: y + 4, width: right - left - bar, height: 10, fill: "#eef0f3", rx: 3 }));
      svg.append(el("rect", { class: "constraint-prob", "data-metric": c.metric, "data-arm": a.arm,
        "data-probability": String(p), x: left + bar, y: y + 4,
        width: Math.max((right - left - bar) * p, p > 0 ? 1 : 0), height: 10, fill: a.color, rx: 3 }));
      svg.append(el("text", { class: "label", x: width - 4, y: y + 13, "text-anchor": "end" }, pct(p)));
      y += row;
    });
  });
}

function drawMetricTable(config, stats, arms) {
  const t = $("metrics-table");
  const thead = document.createElement("thead"), tr = document.createElement("tr");
  ["metric", ...arms.map((a) => a.arm)].forEach((h) => { const th = document.createElement("th"); th.textContent = h; tr.append(th); });
  thead.append(tr);
  const tbody = document.createElement("tbody");
  const weights = config.objective || {};
  const rows = Object.entries(stats.metrics).map(([m, per]) => {
    const given = config.metrics?.[m]?.given;
    return [m + (given ? ` | ${given}` : "") + (weights[m] != null ? ` (weight ${fmt(weights[m])})` : ""), m,
      arms.map((a) => per[a.arm])];
  });
  rows.push(["objective", "", arms.map((a) => ({ ...stats.objective[a.arm], n: null }))]);
  rows.forEach(([label, metric, cells]) => {
    const r = document.createElement("tr");
    r.dataset.metric = metric || "objective";
    const th = document.createElement("td");
    th.textContent = label;
    r.append(th);
    cells.forEach((s, i) => {
      const td = document.createElement("td");
      td.dataset.arm = arms[i].arm;
      td.textContent = `${fmt(s.mean)} [${fmt(s.low)}, ${fmt(s.high)}]` + (s.n != null ? ` n=${count(s.n)}` : "");
      r.append(td);
    });
    tbody.append(r);
  });
  t.replaceChildren(thead, tbody);
}

const HEADINGS = { one: null, several: {
  "h-density": "Posterior density of the objective per arm",
  "h-rate": "Objective per arm, 95% credible interval",
  "h-best": "Probability of the best objective (constraints aside)" } };

function setHeadings(several) {
  // the single-reward panels show the objective for a bandit with several metrics: say so
  if (HEADINGS.one === null) {
    HEADINGS.one = Object.fromEntries(Object.keys(HEADINGS.several).map((id) => [id, $(id).innerHTML]));
  }
  Object.keys(HEADINGS.several).forEach((id) => {
    if (several) $(id).textContent = HEADINGS.several[id];
    else $(id).innerHTML = HEADINGS.one[id];
  });
}

/** The several-metric panel: hidden for a bandit with one reward per decision. */
function drawMetrics(config, stats, arms) {
  const panel = $("metrics-panel");
  const several = Boolean(stats.metrics && stats.objective);
  setHeadings(several);
  if (!several) { panel.hidden = true; return; }
  panel.hidden = false;
  drawPareto(config, stats, arms);
  drawConstraintProbs(stats, arms);
  drawMetricTable(config, stats, arms);
}
