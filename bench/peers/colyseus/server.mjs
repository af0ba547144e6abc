// The peer of `make load-peers`: a minimal Colyseus 0.18 room that does what Rampart's
// load games need of a game server and no more: two seats, a move message answered at once
// by a broadcast of a small state to both clients (the same fields as Rampart's `state`
// frame, encoded by Colyseus's own protocol: msgpack over WebSocket). No schema state sync
// (its patches go out at `patchRate`, 50 ms by default, which would measure the tick, not
// the server), no validation, no persistence.
//   node server.mjs PORT
import { Server, Room } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";

class Connect4 extends Room {
  maxClients = 2;

  onCreate() {
    this.autoDispose = true;
    this.moves = 0;
    this.columns = [[], [], [], [], [], [], []];
    this.names = [];
    this.createdAt = new Date().toISOString();
    this.onMessage("move", (client, column) => {
      this.columns[Math.min(6, Math.max(0, column | 0))].push(this.moves % 2 === 0 ? "red" : "yellow");
      this.moves += 1;
      this.broadcast("state", this.state_());
    });
  }

  onJoin(client, options) {
    // The client has its seat once join resolves (Colyseus's own handshake): no first
    // state is sent, as the SDK registers its handlers only after that.
    this.names.push(options?.name ?? "player");
  }

  state_() {
    const seat = (i) => ({ name: this.names[i] ?? null, connected: i < this.clients.length, ai: false });
    return {
      game_id: this.roomId, kind: "connect4", status: this.moves >= 42 ? "draw" : "playing",
      turn: this.moves >= 42 ? null : this.moves % 2 === 0 ? "red" : "yellow", winner: null,
      columns: this.columns, moves: this.moves, players: { red: seat(0), yellow: seat(1) },
      restarts: 0, created_at: this.createdAt, winning_line: null,
    };
  }
}

const port = Number(process.argv[2] ?? 2567);
const server = new Server({ transport: new WebSocketTransport({ maxPayload: 4096 }) });
server.define("connect4", Connect4);
await server.listen(port, "127.0.0.1");
console.error(`colyseus peer listening on 127.0.0.1:${port}`);
