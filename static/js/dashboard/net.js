// Every request of the dashboard has a deadline: a server that does not answer shows as
// unreachable within FETCH_TIMEOUT_MS instead of leaving a poll hanging.

export const FETCH_TIMEOUT_MS = 4000;

/** fetch with a deadline (never cached); resolves to the Response or throws (AbortError past it). */
export async function fetchWithin(path, init = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    return await fetch(path, { cache: 'no-store', ...init, signal: ctl.signal });
  } finally {
    clearTimeout(timer);
  }
}
