// Rampart browser client: the entry point, which wires the modules under js/. Plain ES
// modules, no build step, no dependencies, works offline.
//
//   js/api.js          REST helper (ApiError)
//   js/storage.js      seats and name (localStorage), this tab's waitlist ticket (sessionStorage)
//   js/notices.js      the notice (toast) with scopes
//   js/sentences.js    the sentence for every error code and game-socket close code
//   js/health-pill.js  the top bar's server pill, in a player's words (health.js)
//   js/lobby.js        the lobby list and its polling
//   js/waitlist.js     the waiting line: its panel, lobby-socket watch and polling fallback
//   js/game-socket.js  the game WebSocket (also the light-cycle page's): join, pings, reconnect
//   js/board.js        the board: rendering, winning line, pending disc, keys 1–7
//   js/chat.js         the table chat
//   js/game.js         the game on screen: state, frames, moves, status, banner
//   js/routes.js       views, the URL, new game / join / invitation
//
// Wire contract: docs/PROTOCOL.md (REST, the game WebSocket, and the
// lobby WebSocket for the waitlist). Untrusted text (names, chat, server messages) is only
// ever written with textContent, never innerHTML.

import { startHealth } from './js/health-pill.js';
import { currentGameId, initGame, openGame } from './js/game.js';
import { initLobby, startLobby } from './js/lobby.js';
import { afterLeavingLine, enterGame, focusName, initRoutes, joinGame, route, setUrl, showInvite, showView } from './js/routes.js';
import { initWaitlist } from './js/waitlist.js';

initGame({ showInvite, showView, setUrl });
initLobby({ currentGameId, onResume: (id) => { setUrl(id); openGame(id); }, onJoin: joinGame });
initWaitlist({ enterGame, showView, setUrl, afterLeave: afterLeavingLine });
const name = initRoutes();
startHealth();
startLobby();
route();
if (!name) focusName();
