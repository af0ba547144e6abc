// The charts: one uPlot chart per definition in chart-defs.js, in a card with its current
// value and sentence, redrawn from the samples after every poll, resized with their card,
// rebuilt on a change of light/dark scheme. uPlot is vendored in static/vendor/ (a global
// `uPlot` from a classic script loaded before the modules); without it the cards show the
// numbers only. Also the browser tests' read-only view of the charts (window.__dashboard).
//
// Series of kind "limit" (dashed red) are the configured limits: null where the limit is
// off, so no line is drawn. Kind "ref" (dashed grey) is a reference that is not a limit (the
// configured admission pace). Counter charts plot each running total minus its value at the
// chart's left edge: "how many in the window".

import { CHARTS } from './chart-defs.js';
import { $, make, setText } from './dom.js';
import { fmtAxis, fmtInt, fmtUnit } from './format.js';
import { inWindow, samples, xWindow } from './samples.js';

/** Plot height in CSS pixels: a little shorter on a phone, where the charts stack. */
function chartHeight() { return window.innerWidth < 560 ? 140 : 170; }
let fitLimits = true;

/** Whether the y scale stretches to show the limit lines ("Scale to show limits"). */
export function setFitLimits(on) { fitLimits = on; }

const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];

const charts = new Map(); // id → { def, card parts, u (the uPlot instance, or null) }
const uPlotLib = typeof globalThis.uPlot === 'function' ? globalThis.uPlot : null;

function palette() {
  const cs = getComputedStyle(document.documentElement);
  const v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
  return {
    text: v('--text', '#141a2a'),
    muted: v('--muted', '#5d6780'),
    grid: v('--border', '#e3e7f0'),
    danger: v('--danger', '#dc2626'),
    series: [v('--accent', '#2563eb'), '#8b5cf6', '#0d9488', '#d97706'],
  };
}

function niceCeil(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/** y from 0 to just above the data (and, when "Scale to show limits" is on, the limits). */
function yRange(def, u) {
  if (def.max) return [0, def.max];
  const [lo] = xWindow();
  const xs = u.data[0];
  let top = 0;
  for (let si = 1; si < u.data.length; si += 1) {
    if (def.series[si - 1].kind === 'limit' && !fitLimits) continue;
    const ys = u.data[si];
    for (let i = 0; i < xs.length; i += 1) if (xs[i] >= lo && ys[i] !== null && ys[i] > top) top = ys[i];
  }
  return [0, Math.max(def.floor || 1, niceCeil(top * 1.08 || 1))];
}

function timeLabel(t) {
  const d = new Date(t * 1000);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return d.getSeconds() ? `${hm}:${String(d.getSeconds()).padStart(2, '0')}` : hm;
}

function chartData(def) {
  const list = inWindow();
  const base = def.counter ? def.series.map((sd) => {
    for (const s of list) { const v = sd.get(s); if (v !== null && v !== undefined) return v; }
    return 0;
  }) : null;
  const value = (sd, i, s) => {
    const v = sd.get(s);
    if (v === null || v === undefined) return null;
    return def.counter ? v - base[i] : v;
  };
  const data = [samples.map((s) => s.t), ...def.series.map((sd, i) => samples.map((s) => value(sd, i, s)))];
  // A limit is drawn across the whole chart: one extra point at the left edge carries the
  // oldest known limit there (the data series have no value at it).
  const [lo] = xWindow();
  if (def.series.some((sd) => sd.kind === 'limit') && (!list.length || list[0].t > lo)) {
    data[0].unshift(lo);
    def.series.forEach((sd, i) => {
      let v = null;
      if (sd.kind === 'limit') for (const smp of samples) { v = value(sd, i, smp); if (v !== null) break; }
      data[i + 1].unshift(v);
    });
  }
  return data;
}

/** The time of the newest sample with a value in the first series (the legend's "At"). */
function newestTime(u) {
  const ys = u.data[1] || [];
  for (let i = ys.length - 1; i >= 0; i -= 1) if (ys[i] !== null && ys[i] !== undefined) return u.data[0][i];
  return null;
}

/** The newest non-null value of a series (what the legend shows while not hovered). */
function latest(u, si) {
  const ys = u.data[si] || [];
  for (let i = ys.length - 1; i >= 0; i -= 1) if (ys[i] !== null && ys[i] !== undefined) return ys[i];
  return null;
}

function chartOptions(def, width) {
  const col = palette();
  const axis = { stroke: col.muted, grid: { stroke: col.grid, width: 1 }, ticks: { stroke: col.grid, width: 1 }, font: '11px system-ui, sans-serif' };
  let dataIndex = 0;
  // Hovered: the values under the cursor; otherwise the newest ones.
  const series = [{ label: 'At', value: (u, t, si, idx) => { const x = idx === null ? newestTime(u) : t; return x === null ? '—' : timeLabel(x); } }];
  for (const sd of def.series) {
    const value = (u, v, si, idx) => {
      const x = idx === null ? latest(u, si) : v;
      if (x === null || x === undefined) return sd.kind === 'limit' ? 'off' : '—';
      return fmtUnit(def.unit, x);
    };
    if (sd.kind === 'limit' || sd.kind === 'ref') {
      series.push({ label: sd.label, stroke: sd.kind === 'limit' ? col.danger : col.muted, width: 1.5, dash: [6, 4], points: { show: false }, value });
      continue;
    }
    const stroke = col.series[sd.color ?? dataIndex];
    series.push({
      label: sd.label, stroke, width: 2, points: { show: false }, value,
      fill: dataIndex === 0 && !def.counter ? `${stroke}1f` : undefined,
      paths: def.counter ? uPlotLib.paths.stepped({ align: 1 }) : undefined,
    });
    dataIndex += 1;
  }
  return {
    width, height: chartHeight(),
    series,
    scales: {
      x: { time: true, range: () => xWindow() },
      y: { range: (u) => yRange(def, u) },
    },
    axes: [
      { ...axis, space: 70, values: (u, splits) => splits.map(timeLabel) },
      { ...axis, size: 46, space: 28, values: (u, splits) => splits.map((v) => fmtAxis(def.unit, v)), ...(def.counts ? { incrs: COUNT_INCRS } : {}) },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
  };
}

function createChartCard(def) {
  const root = make('article', 'card chart-card');
  root.setAttribute('data-testid', `chart-${def.id}`);
  root.dataset.chart = def.id;
  const head = make('header', 'chart-head');
  const title = make('h3', 'chart-title', def.title);
  title.id = `chart-${def.id}-title`;
  const now = make('span', 'chart-now', '—');
  now.setAttribute('data-testid', 'now');
  head.append(title, now);
  now.id = `chart-${def.id}-now`;
  const sub = make('p', 'chart-sub');
  sub.setAttribute('data-testid', 'sub');
  sub.id = `chart-${def.id}-sub`;
  const plot = make('div', 'chart-plot');
  // The picture's text: the title, the current value and the sentence under them.
  plot.setAttribute('role', 'img');
  plot.setAttribute('aria-labelledby', `${title.id} ${now.id}`);
  plot.setAttribute('aria-describedby', sub.id);
  plot.setAttribute('data-testid', 'plot');
  root.append(head, sub, plot);
  return { root, now, sub, plot };
}

/** Makes every chart's card in its section and mounts its plot (numbers only without uPlot). */
export function buildCharts() {
  for (const def of CHARTS) {
    const parts = createChartCard(def);
    $(`charts-${def.section}`).append(parts.root);
    charts.set(def.id, { def, ...parts, u: null });
  }
  if (!uPlotLib) {
    for (const c of charts.values()) {
      c.plot.append(make('p', 'small charts-missing', 'The chart library (/static/vendor/uPlot.iife.min.js) did not load: numbers only.'));
    }
    return;
  }
  for (const c of charts.values()) mountChart(c);
  const ro = new ResizeObserver((entries) => {
    for (const e of entries) {
      const c = [...charts.values()].find((x) => x.plot === e.target);
      const width = Math.floor(e.contentRect.width);
      if (c && c.u && width > 0 && (c.u.width !== width || c.u.height !== chartHeight())) c.u.setSize({ width, height: chartHeight() });
    }
  });
  for (const c of charts.values()) ro.observe(c.plot);
  // A change of light/dark scheme: rebuild with the new colours (the samples stay).
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const c of charts.values()) { c.u.destroy(); c.u = null; mountChart(c); }
  });
}

function mountChart(c) {
  const width = Math.max(200, Math.floor(c.plot.clientWidth) || 320);
  c.u = new uPlotLib(chartOptions(c.def, width), chartData(c.def), c.plot);
}

/** Brings every chart, its heading value, sentence and tone up to date with the samples. */
export function drawCharts() {
  const list = inWindow();
  const last = samples.length ? samples[samples.length - 1] : null;
  for (const c of charts.values()) {
    const { def } = c;
    if (c.u) c.u.setData(chartData(def));
    if (!last) continue;
    const nowValue = def.now ? def.now(list) : def.series[0].get(last);
    setText(c.now, def.counter ? (nowValue === null ? '—' : `+${fmtInt(nowValue)}`) : fmtUnit(def.unit, nowValue));
    const sub = def.sub(last, list);
    setText(c.sub, sub.text);
    c.sub.dataset.tone = sub.tone;
    c.root.dataset.status = def.status(last, list);
  }
}

// A read-only view of the charts for the browser tests (and the curious): no setters.
function chartView(id) {
  const c = charts.get(id);
  return c && c.u ? c : null;
}
window.__dashboard = Object.freeze({
  charts: () => [...charts.keys()],
  /** Samples inside the visible window with a value in the chart's first series. */
  points: (id) => {
    const c = chartView(id);
    if (!c) return 0;
    const [lo] = xWindow();
    return c.u.data[0].filter((t, i) => t >= lo && c.u.data[1][i] !== null).length;
  },
  xRange: (id) => { const c = chartView(id); return c ? [c.u.scales.x.min, c.u.scales.x.max] : null; },
  yRange: (id) => { const c = chartView(id); return c ? [c.u.scales.y.min, c.u.scales.y.max] : null; },
  /** The chart's limit lines: the latest value (null = off, not drawn) and where it is drawn. */
  limits: (id) => {
    const c = chartView(id);
    if (!c) return [];
    return c.def.series.map((sd, i) => [sd, i + 1]).filter(([sd]) => sd.kind === 'limit').map(([sd, i]) => {
      const ys = c.u.data[i];
      let value = null;
      for (let j = ys.length - 1; j >= 0 && value === null; j -= 1) value = ys[j];
      const inView = value !== null && value >= c.u.scales.y.min && value <= c.u.scales.y.max;
      return {
        label: sd.label, value, inView,
        // In canvas pixels (the canvas's own resolution), for a pixel check of the drawn line.
        canvasY: inView ? Math.round(c.u.valToPos(value, 'y', true)) : null,
        bbox: { ...c.u.bbox },
      };
    });
  },
});
