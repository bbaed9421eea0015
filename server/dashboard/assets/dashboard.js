// scanopt dashboard: polls the app's own JSON and draws with the vendored uPlot.
// Everything users wrote is put on the page with textContent, never as markup.
"use strict";

const LIVE_MS = 2000;
const SLOW_MS = 15000;
const KEEP = 150; // live points kept (5 minutes at 2 s)
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

const $ = (id) => document.getElementById(id);
const live = { t: [], rate: [], p50: [], p95: [], p99: [] };
let previous = null;
const charts = {};

const SPAN_S = { "1h": 3600, "24h": 86400, "7d": 604800 };
// Live charts show the last 5 minutes, history charts the chosen window, ending now.
const spans = { "c-rate": () => 300, "c-latency": () => 300 };
const span = (id) => (spans[id] ? spans[id]() : SPAN_S[$("window").value]);

function chart(id, labels, fmt) {
  const el = $(id);
  // Dots as well as lines: a slice with data between empty ones is still seen.
  const series = [{}].concat(labels.map((label, i) => ({
    label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
    points: { show: true, size: 4, fill: COLORS[i % COLORS.length] },
    value: (u, v) => (v == null ? "-" : fmt(v)),
  })));
  // Shares start at 0 and never pass 100%, even when every value is 0.
  const y = fmt === pct ? { range: (u, lo, hi) => [0, Math.min(1, Math.max(0.01, hi || 0) * 1.1)] } : {};
  const opts = {
    width: Math.max(300, el.clientWidth), height: 200, series,
    scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - span(id), now]; } }, y },
    axes: [{}, { size: 64, values: (u, vals) => vals.map((v) => fmt(v)) }],
    hooks: { draw: [(u) => { el.dataset.drawn = "1"; }] },
  };
  const data = [[]].concat(labels.map(() => []));
  charts[id] = new uPlot(opts, data, el);
  return charts[id];
}

// A chart whose series are not known in advance (one per version and arm) is rebuilt
// when its set of series changes.
function keyedChart(id, keys, fmt, none = "no labelled outcomes yet") {
  const existing = charts[id];
  if (existing && existing.keys === keys.join("|")) return existing;
  if (existing) existing.destroy();
  $(id).textContent = "";
  const made = chart(id, keys.length ? keys : [none], fmt);
  made.keys = keys.join("|");
  return made;
}

const num = (digits) => (v) => (v == null ? "-" : Number(v).toFixed(digits));
const pct = (v) => (v == null ? "-" : (100 * v).toFixed(1) + "%");
const ms = (v) => (v == null ? "-" : (1000 * v).toFixed(v < 0.01 ? 2 : 1) + " ms");

function quantile(q, now, before) {
  // Prometheus's histogram_quantile over the bucket deltas between two polls.
  const deltas = now.map(([le, c], i) => [le, c - (before[i] ? before[i][1] : 0)]);
  const total = deltas.length ? deltas[deltas.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const [le, c] of deltas) {
    if (c >= rank) {
      if (le === null || !isFinite(le)) return lower;  // null: the +Inf bucket
      return lower + (le - lower) * ((rank - below) / Math.max(c - below, 1e-12));
    }
    lower = le; below = c;
  }
  return lower;
}

function text(el, value) { el.textContent = value; }

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
    tr.appendChild(td);
  }
  return tr;
}

function fill(tbody, rows, emptyText, width) {
  tbody.textContent = "";
  if (!rows.length) {
    const tr = row([emptyText]);
    tr.firstChild.colSpan = width;
    tr.firstChild.className = "muted";
    tbody.appendChild(tr);
  }
  for (const r of rows) tbody.appendChild(r);
}

function showLive(d) {
  const pill = $("status");
  pill.className = "pill " + d.status;
  text(pill, d.status);
  text($("version"), d.model_versions.join(", ") || "none");
  text($("workers"), `${d.ready_workers}/${d.workers} ready`);
  text($("store"), d.store_up === null ? "unknown" : d.store_up ? "up" : "unreachable");
  text($("updated"), new Date(d.at).toLocaleTimeString());
  const at = Date.parse(d.at) / 1000;
  if (previous) {
    const dt = at - previous.at;
    if (dt > 0) {
      const rate = (d.requests - previous.d.requests) / dt;
      const p = [0.5, 0.95, 0.99].map((q) => quantile(q, d.latency_buckets, previous.d.latency_buckets));
      live.t.push(at); live.rate.push(rate);
      live.p50.push(p[0]); live.p95.push(p[1]); live.p99.push(p[2]);
      for (const k of Object.keys(live)) if (live[k].length > KEEP) live[k].shift();
      text($("t-rate"), rate.toFixed(1));
      text($("t-p50"), ms(p[0])); text($("t-p95"), ms(p[1])); text($("t-p99"), ms(p[2]));
      text($("t-5xx"), ((d.errors_5xx - previous.d.errors_5xx) / dt).toFixed(2));
      text($("t-4xx"), ((d.errors_4xx - previous.d.errors_4xx) / dt).toFixed(2));
      const hits = d.cache_hits - previous.d.cache_hits;
      const lookups = hits + d.cache_misses - previous.d.cache_misses;
      text($("t-cache"), lookups > 0 ? pct(hits / lookups) : "-");
      charts["c-rate"].setData([live.t, live.rate]);
      const inMs = (xs) => xs.map((v) => (v == null ? null : 1000 * v));
      charts["c-latency"].setData([live.t, inMs(live.p50), inMs(live.p95), inMs(live.p99)]);
    }
  }
  previous = { at, d };

  const alerts = $("alerts");
  alerts.textContent = "";
  if (!d.alerts.length) {
    const li = document.createElement("li"); li.className = "muted"; li.textContent = "none";
    alerts.appendChild(li);
  }
  // One line per alert name: drift alone can hold for dozens of columns at once.
  const byName = new Map();
  for (const a of d.alerts) {
    if (!byName.has(a.name)) byName.set(a.name, []);
    byName.get(a.name).push(a);
  }
  for (const [name, group] of byName) {
    const li = document.createElement("li");
    const sev = document.createElement("span");
    sev.className = "sev-" + group[0].severity; sev.textContent = group[0].severity + " ";
    li.appendChild(sev);
    const labels = group.map((a) => Object.values(a.labels).join(" ") || "-");
    const shown = labels.slice(0, 8).join(", ") + (labels.length > 8 ? `, and ${labels.length - 8} more` : "");
    li.appendChild(document.createTextNode(`${name} (${group.length}): ${shown}`));
    alerts.appendChild(li);
  }

  fill($("accuracy"), d.accuracy.map((a) => row([
    a.version, a.target, String(a.labelled), num(2)(a.mae), num(2)(a.training_mae), pct(a.coverage),
  ])), "no labelled outcomes yet", 6);

  fill($("shadow"), (d.shadow || []).map((r) => row([
    `${r.champion} / ${r.shadow}`, r.target, String(r.pairs), num(2)(r.champion_mae),
    num(2)(r.shadow_mae),
    r.difference == null ? "-" : `${num(2)(r.difference)} [${num(2)(r.lower)}, ${num(2)(r.upper)}]`,
    r.verdict,
  ])), "no shadow version", 7);

  // Per feature its worst score against that score's threshold, worst first.
  const worst = new Map();
  for (const f of d.drift) {
    const ratio = f.value != null && f.threshold ? f.value / f.threshold : null;
    const seen = worst.get(f.feature);
    if (!seen || (ratio ?? -1) > (seen.ratio ?? -1)) worst.set(f.feature, { ...f, ratio });
  }
  const ranked = [...worst.values()].sort((a, b) => (b.ratio ?? -1) - (a.ratio ?? -1));
  fill($("drift"), ranked.slice(0, 12).map((f) => {
    const bar = document.createElement("span");
    bar.className = "bar" + (f.alarm ? " alarm" : "");
    bar.style.width = Math.min(120, 60 * (f.ratio || 0)) + "px";
    return row([f.feature, f.score, f.ratio == null ? "-" : f.ratio.toFixed(2), bar]);
  }), "no drift scores yet", 4);
  text($("drift-more"), ranked.length > 12
    ? `${ranked.length - 12} more features; ${ranked.filter((f) => f.alarm).length} of ${ranked.length} alarming`
    : "");

  text($("empty-rate"), d.empty_rate.length
    ? "Empty-scan rate per arm: " + d.empty_rate.map((r) => `${r.arm} ${pct(r.rate)} (${r.window})`).join(", ")
    : "");
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) {
    let detail = "";
    try { detail = (await response.json()).detail || ""; } catch (e) { /* not JSON */ }
    const error = new Error(`HTTP ${response.status} ${detail}`.trim());
    error.status = response.status;
    throw error;
  }
  return response.json();
}

async function pollLive() {
  try { showLive(await getJson("/v1/dashboard/live")); }
  catch (e) { const p = $("status"); p.className = "pill down"; text(p, "unreachable"); }
  setTimeout(pollLive, LIVE_MS);
}

const DRIFT_SHOWN = 6; // the features that came closest to their thresholds

function showHistory(h) {
  charts["c-volume"].setData([h.t, h.requests_per_s]);
  const inMs = (xs) => xs.map((v) => (v == null ? null : 1000 * v));
  charts["c-hlatency"].setData([h.t, inMs(h.p50), inMs(h.p95), inMs(h.p99)]);
  charts["c-errors"].setData([h.t, h.error_ratio, h.slow_ratio]);
  const peak = (d) => Math.max(...d.ratio.map((v) => (v == null ? -1 : v)));
  const top = [...h.drift].sort((a, b) => peak(b) - peak(a)).slice(0, DRIFT_SHOWN);
  const keys = top.map((d) => d.feature);
  keyedChart("c-drift", keys, num(2), "no drift windows yet")
    .setData([h.t, ...(keys.length ? top.map((d) => d.ratio) : [[]])]);
  // What each history chart holds, for people reading the page's markup and for tests.
  $("c-hlatency").dataset.points = String(h.p95.filter((v) => v != null).length);
  $("c-drift").dataset.series = String(keys.length);
}

function showStored(s) {
  const banner = $("store-banner");
  banner.hidden = true;
  const keys = [...new Set(s.accuracy.map((p) => `${p.version} ${p.arm}`))].sort();
  const times = [...new Set(s.accuracy.map((p) => Date.parse(p.at) / 1000))].sort((a, b) => a - b);
  const series = (field) => keys.map((k) => times.map((t) => {
    const p = s.accuracy.find((q) => `${q.version} ${q.arm}` === k && Date.parse(q.at) / 1000 === t);
    return p ? p[field] : null;
  }));
  keyedChart("c-mae", keys, num(1)).setData([times, ...(keys.length ? series("count_mae") : [[]])]);
  keyedChart("c-coverage", keys, pct).setData([times, ...(keys.length ? series("count_coverage") : [[]])]);

  // Empty-scan share per arm, every version's labelled outcomes together.
  const arms = [...new Set(s.accuracy.map((p) => p.arm))].sort();
  const share = arms.map((arm) => times.map((t) => {
    const here = s.accuracy.filter((p) => p.arm === arm && Date.parse(p.at) / 1000 === t);
    const n = here.reduce((a, p) => a + p.n, 0);
    return n ? here.reduce((a, p) => a + p.empty, 0) / n : null;
  }));
  keyedChart("c-empty", arms, pct).setData([times, ...(arms.length ? share : [[]])]);
  $("c-empty").dataset.series = String(arms.length);

  fill($("arms"), s.arms.map((a) => row([
    a.arm, String(a.users), String(a.scans_completed), pct(a.empty_rate), pct(a.adoption),
  ])), "no completed scans yet", 5);

  const list = $("feedback");
  list.textContent = "";
  if (!s.feedback.length) {
    const li = document.createElement("li"); li.className = "muted"; li.textContent = "none yet";
    list.appendChild(li);
  }
  for (const f of s.feedback) {
    const li = document.createElement("li");
    li.className = "feedback";
    li.textContent = `${new Date(f.received_at).toLocaleString()}  satisfaction ${f.satisfaction}/5, usefulness ${f.usefulness}/5` +
      (f.suggestion ? `\n${f.suggestion}` : "");
    list.appendChild(li);
  }
}

async function pollSlow() {
  const window = $("window").value;
  // Both at once: the history may wait for a first drift calibration, the rest must not.
  const history = getJson(`/v1/dashboard/history?window=${window}`)
    .then(showHistory, () => { /* the stored poll below reports a store outage */ });
  const stored = getJson(`/v1/dashboard/stored?window=${window}`).then(showStored, (e) => {
    const banner = $("store-banner");
    banner.hidden = false;
    text(banner, `Store unreachable (${e.message}): history, feedback, the A/B summary and accuracy are paused; live figures keep coming.`);
  });
  await Promise.all([history, stored]);
}

function start() {
  chart("c-rate", ["req/s"], num(1));
  chart("c-latency", ["p50", "p95", "p99"], num(2));
  chart("c-volume", ["req/s"], num(1));
  chart("c-hlatency", ["p50", "p95", "p99"], num(2));
  chart("c-errors", ["5xx share", "slow (> 50 ms) share"], pct);
  keyedChart("c-drift", [], num(2), "no drift windows yet");
  keyedChart("c-mae", [], num(1));
  keyedChart("c-coverage", [], pct);
  keyedChart("c-empty", [], pct);
  $("window").addEventListener("change", pollSlow);
  pollLive();
  pollSlow();
  setInterval(pollSlow, SLOW_MS);
}

document.addEventListener("DOMContentLoaded", start);
