// What the player reads when something goes wrong, in plain words: the sentence for every
// error code (REST or WebSocket) and for every close code of the game socket. No DOM and
// no state: every page (Connect Four, light cycles) uses the same words.

/** A friendly sentence for an error `{code, message, details}` (REST or WebSocket). */
export function errorSentence(err, extra = {}) {
  const code = err && err.code;
  const d = (err && err.details && typeof err.details === 'object') ? err.details : {};
  const msg = (err && typeof err.message === 'string' && err.message) || '';
  const retryS = extra.retryAfter ? ` Try again in ${extra.retryAfter} s.` : '';
  switch (code) {
    case 'NOT_YOUR_TURN': return "Hold on — it's not your turn yet.";
    case 'INVALID_MOVE': return "That move isn't allowed — pick a column that still has room.";
    case 'GAME_OVER': return d.reason === 'abandoned'
      ? 'Nobody was connected to this game for a while, so it was closed. Start a new one whenever you like.'
      : 'This game is already over. Start a new one whenever you like.';
    case 'GAME_RESTARTING': return 'The game is restarting, try again in a moment.';
    case 'GAME_FAILED': return 'This game hit a fault too many times and was closed. Sorry! Start a new one.';
    case 'UNAUTHORIZED': return 'Your seat token was refused — this browser no longer holds a valid seat for this game.';
    case 'FORBIDDEN': return "You're not allowed to do that.";
    case 'REQUEST_TIMEOUT': return 'The request took too long to reach the server. Please try again.';
    case 'RATE_LIMITED': return `You're going a little fast — please slow down.${retryS || ' Try again in a moment.'}`;
    case 'PAYLOAD_TOO_LARGE': return 'That message is too long for the server.';
    case 'BAD_REQUEST': return "The server didn't understand that request. Reloading the page may help.";
    case 'VALIDATION_FAILED': {
      const field = typeof d.field === 'string' ? d.field : '';
      if (field === 'player_name') {
        const why = {
          reserved: 'That name is the AI\'s. Please choose another one.',
          invisible: 'Your name needs at least one visible character.',
          bidi_control: 'Your name contains text-direction control characters. Please choose another one.',
          stacked_marks: 'Your name stacks too many accents on one letter. Please choose another one.',
        }[d.reason];
        return why || 'Please choose a different name (1–32 characters).';
      }
      if (field === 'text') return 'That chat message is not allowed (at most 280 characters, not empty).';
      if (field === 'column') return 'Pick a column between 1 and 7.';
      return field ? `Please check the ${field.replace(/_/g, ' ')}.` : `Something you entered isn't valid${msg ? `: ${msg}` : '.'}`;
    }
    case 'UNKNOWN_MESSAGE_TYPE': return "The server didn't recognise a message from this page. Reloading may help.";
    case 'GAME_NOT_FOUND': case 'NOT_FOUND': return "That game doesn't exist (any more).";
    case 'TICKET_NOT_FOUND': return 'Your place in line has expired.';
    case 'GAME_FULL': return 'That game already has two players.';
    case 'SERVER_BUSY': {
      const pos = Number.isFinite(d.position) ? ` You're number ${d.position} in line.` : '';
      return `The server is busy right now.${pos}${retryS || ' Please try again shortly.'}`;
    }
    case 'DRAINING': return 'The server is shutting down for maintenance — please try again in a minute.';
    case 'INTERNAL': {
      const inc = d.incident != null ? ` (incident ${String(d.incident)})` : '';
      return `Something went wrong on our side${inc}. Please try again.`;
    }
    case 'NETWORK': return "Can't reach the server — check your connection and try again.";
    default: return `Something went wrong: ${msg || code || 'unknown error'}`;
  }
}

/**
 * What a close of the game socket means, for the player: `text`, a sentence ('' for a
 * close that needs none: the socket just reconnects), and `label`, the connection pill's
 * word once the socket stays closed. 4410 is not a wire code: the upgrade was refused and
 * REST says the game failed (game-socket.js).
 */
export function closeWords(code) {
  switch (code) {
    case 4401: return { label: 'Seat refused', text: 'Your seat token was refused, so this tab can no longer play this game. Start or join another game.' };
    case 4404: return { label: 'Not found', text: 'This game was not found — it may have ended or been removed. Start a new one!' };
    case 4409: return { label: 'Open in another tab', text: 'This seat was opened in another tab, so this one stepped aside. Reload to play here instead.' };
    case 4410: return { label: 'Game closed', text: errorSentence({ code: 'GAME_FAILED' }) };
    case 1009: return { label: 'Disconnected', text: 'A message was too large for the server; reconnecting…' };
    case 1012: return { label: 'Disconnected', text: "The server is restarting — we'll reconnect you as soon as it's back." };
    case 1013: return { label: 'Disconnected', text: 'Connection too slow, reconnecting…' };
    default: return { label: 'Disconnected', text: '' };
  }
}
