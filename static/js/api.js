// REST helper: JSON in, JSON out, and one error type for every failure (an HTTP error
// with the server's `{error: {code, message, details}}`, or a network failure: code
// NETWORK, status 0). Plain ES module.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || (status ? `HTTP_${status}` : 'NETWORK');
    this.details = e.details || {};
    this.retryAfter = retryAfter;
    /** The error object as the wire has it, for errorSentence(). */
    this.error = { code: this.code, message: e.message || (status ? `HTTP ${status}` : ''), details: this.details };
  }
}

/** `method path` with an optional JSON body; resolves to the parsed answer or throws ApiError. */
export async function api(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body !== undefined ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { error: { code: 'NETWORK', message: 'network error' } });
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!res.ok) {
    const ra = parseInt(res.headers.get('Retry-After') || '', 10);
    throw new ApiError(res.status, data, Number.isFinite(ra) ? ra : undefined);
  }
  return data;
}
