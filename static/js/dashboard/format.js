// Numbers as an operator reads them: checked values (anything not a finite number is "—"),
// durations, percentages, clock times, a value with its unit, and axis labels. No DOM.

/** A finite number, or null for anything else (null, strings, NaN…). */
export function num(v) { return typeof v === 'number' && Number.isFinite(v) ? v : null; }

/** A positive finite number, or null (a limit of 0 means "off"). */
export function positive(v) { const n = num(v); return n !== null && n > 0 ? n : null; }

/** `v` if it is a plain object, else an empty one (for reading the server's JSON safely). */
export function obj(v) { return v && typeof v === 'object' && !Array.isArray(v) ? v : {}; }

const intFmt = new Intl.NumberFormat('en');
export function fmtInt(v) { const n = num(v); return n === null ? '—' : intFmt.format(n); }

/** 850 → "850 ms", 4200 → "4.2 s", 95000 → "1 min 35 s". */
export function fmtMs(v) {
  const ms = num(v);
  if (ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return rest ? `${m} min ${rest} s` : `${m} min`;
}
export function fmtSecs(v) { const s = num(v); return s === null ? '—' : fmtMs(s * 1000); }
export function fmtPct(v) {
  const p = num(v);
  if (p === null) return '—';
  return `${p >= 10 || Number.isInteger(p) ? Math.round(p) : p.toFixed(1)} %`;
}
export function clockTime(d) {
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const fmtCompact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const fmt1 = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const fmt2 = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

/** A value with its unit, for headings, legends and sentences. */
export function fmtUnit(unit, v) {
  const n = num(v);
  if (n === null) return '—';
  switch (unit) {
    case 'MB': return `${n >= 100 ? intFmt.format(Math.round(n)) : fmt1.format(n)} MB`;
    case '%': return fmtPct(n);
    case 'ms': return n < 10 ? `${fmt1.format(n)} ms` : fmtMs(n);
    case '/s': return `${n < 10 ? fmt2.format(n) : fmt1.format(n)}/s`;
    case 's': return n <= 0 ? '0 s' : n < 1 ? '< 1 s' : fmtSecs(Math.ceil(n));
    default: return intFmt.format(Math.round(n));
  }
}
export function fmtAxis(unit, v) {
  if (unit === 's') return v >= 60 ? `${fmt1.format(v / 60)}m` : `${fmtCompact.format(v)}s`;
  return unit === '%' ? `${fmtCompact.format(v)}%` : fmtCompact.format(v);
}
export function fmtWindow(s) { return s % 60 === 0 ? `${s / 60} min` : `${s} s`; }
