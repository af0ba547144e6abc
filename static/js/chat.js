// The table chat: the log (untrusted text, written only with textContent), the input with
// its character count, and sending over the game socket.

import { notify } from './notices.js';
import { $, CHAT_MAX, SEAT_NAME } from './util.js';

const el = {
  log: $('chat-log'),
  form: $('chat-form'),
  input: $('chat-input'),
  count: $('chat-count'),
  send: $('chat-send'),
};
const LOG_MAX = 200;

/** Set by the game: send(frame) → whether it went out; canSend(); who(from) → the sender's name. */
const hooks = { send: () => false, canSend: () => false, who: (from) => SEAT_NAME[from] || 'Someone' };

export function initChat(h) {
  Object.assign(hooks, h);
  el.input.addEventListener('input', updateChat);
  el.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = el.input.value.trim();
    if (!text) return;
    if (text.length > CHAT_MAX) { notify(`Chat messages can be at most ${CHAT_MAX} characters.`, 'warn', { scope: 'game' }); return; }
    if (hooks.send({ type: 'chat', text })) {
      el.input.value = '';
      updateChat();
    } else {
      notify('Not connected — your message was not sent.', 'warn', { scope: 'conn' });
    }
  });
}

/** Updates the count and the Send button (call when the connection changes, too). */
export function updateChat() {
  const n = el.input.value.length;
  el.count.textContent = `${n}/${CHAT_MAX}`;
  el.count.classList.toggle('near', n >= CHAT_MAX - 30 && n < CHAT_MAX);
  el.count.classList.toggle('full', n >= CHAT_MAX);
  el.send.disabled = !hooks.canSend() || el.input.value.trim().length === 0 || n > CHAT_MAX;
}

/** Empties the log and the input (another game opened). */
export function resetChat() {
  el.log.replaceChildren();
  el.input.value = '';
  updateChat();
}

/** Appends a `chat` frame {from, text, at}. */
export function addChat(msg) {
  const li = document.createElement('li');
  li.className = 'chat-line';
  const from = ['red', 'yellow', 'ai'].includes(msg.from) ? msg.from : '';
  const who = document.createElement('span');
  who.className = `chat-from ${from}`;
  who.textContent = `${hooks.who(msg.from)}:`;
  const text = document.createElement('span');
  text.className = 'chat-text';
  text.textContent = typeof msg.text === 'string' ? msg.text : '';
  const time = document.createElement('time');
  time.className = 'chat-time';
  const at = msg.at ? new Date(msg.at) : new Date();
  if (!Number.isNaN(at.getTime())) {
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  li.append(who, text, time);
  const stick = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 30;
  el.log.append(li);
  while (el.log.childElementCount > LOG_MAX) el.log.firstElementChild.remove();
  if (stick) el.log.scrollTop = el.log.scrollHeight;
}
