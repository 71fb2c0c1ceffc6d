// net.js: the game socket. Speaks protocol.md's WebSocket section: HELLO with
// the seat's token, msgpack arrays both ways (through the vendored
// @msgpack/msgpack library, global MessagePack), a PING every few seconds to
// measure the round trip and to notice a dead link, and reconnection with the
// same token after a lost connection. The server keeps a dropped player's seat
// for its reconnect grace (15 s by default), so retries come quickly at first.

const { encode, decode } = globalThis.MessagePack;

export const MSG = Object.freeze({
  HELLO: 1, READY: 2, START: 3, INPUT: 4, LEAVE: 5, PING: 6,
  WELCOME: 64, LOBBY: 65, GAME_START: 66, ROUND_START: 67, SNAPSHOT: 68,
  POINT: 69, ROUND_END: 70, GAME_END: 71, ERROR: 72, PONG: 73, AWAY: 74,
  BACK: 75,
});

// Close codes after which the same token must not be tried again, with what
// to tell the player (protocol.md, "Close codes").
const FINAL_CLOSES = new Map([
  [4001, "The server did not accept our hello in time."],
  [4002, "This seat's token is no longer valid."],
  [4003, "The server closed the connection: protocol error."],
  [4004, "This seat was taken over by another window."],
  [4005, "You left the lobby."],
  [4006, "The game is over."],
  [4007, "Your seat was forfeited: you were away too long."],
]);

const PING_EVERY = 2000; // ms between PINGs
// ms without any message before the link counts as dead: in a lobby only
// PONGs arrive; in a game a SNAPSHOT comes every tick, paused or not.
const SILENCE_LIMIT = 6000;
const SILENCE_LIMIT_IN_GAME = 1500;
const WELCOME_WAIT = 5000; // ms from opening a socket to its WELCOME
const CHECK_EVERY = 250; // ms between checks of the link
const RETRY_FOR = 60000; // ms of reconnect attempts before giving up
const RETRY_DELAYS = [200, 500, 1000, 2000]; // ms before each attempt; the last repeats

// One seat's socket. `handlers.message(type, msg)` gets every server message
// as its decoded array; `handlers.state(state, detail)` hears "connecting",
// "open", "lost" (reconnecting; detail: attempt number), and "closed"
// (final; detail: a sentence for the player).
export class Connection {
  constructor(wsUrl, token, handlers) {
    this.wsUrl = wsUrl;
    this.token = token;
    this.handlers = handlers;
    this.ws = null;
    this.done = false;
    this.welcomed = false;
    this.attempt = 0;
    this.lostAt = null;
    this.heardAt = 0;
    this.openedAt = 0;
    this.pingedAt = 0;
    this.rtt = null;
    this.inGame = false; // set by the page while a game sends snapshots
    this.timer = setInterval(() => this.tick(), CHECK_EVERY);
  }

  open() {
    this.handlers.state(this.lostAt === null ? "connecting" : "lost", this.attempt);
    const ws = new WebSocket(this.wsUrl);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.welcomed = false;
    this.openedAt = performance.now();
    this.pingedAt = 0;
    ws.onopen = () => {
      this.heardAt = performance.now();
      this.send([MSG.HELLO, this.token]);
    };
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(encode(message));
    }
  }

  // Ends the connection for good (the player left, or the game is over).
  close() {
    this.done = true;
    clearInterval(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  // Drops the link as a network failure would; the usual reconnect follows.
  // The old socket is let go at once: a dead link may take long to close.
  drop() {
    const ws = this.ws;
    if (!ws) return;
    ws.close(4000, "dropped by the client");
    this.closed(ws, 4000);
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    this.heardAt = performance.now();
    const message = decode(new Uint8Array(data));
    const type = message[0];
    if (type === MSG.WELCOME) {
      this.welcomed = true;
      this.attempt = 0;
      this.lostAt = null;
      this.handlers.state("open", null);
    } else if (type === MSG.PONG) {
      this.rtt = performance.now() - message[1];
    }
    this.handlers.message(type, message);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.done) return;
    const final = FINAL_CLOSES.get(code);
    if (final !== undefined) {
      this.finish(final);
      return;
    }
    const now = performance.now();
    if (this.lostAt === null) this.lostAt = now;
    if (now - this.lostAt > RETRY_FOR) {
      this.finish("The connection is lost and could not be restored.");
      return;
    }
    this.attempt += 1;
    this.handlers.state("lost", this.attempt);
    const delay = RETRY_DELAYS[Math.min(this.attempt - 1, RETRY_DELAYS.length - 1)];
    setTimeout(() => { if (!this.done) this.open(); }, delay);
  }

  finish(sentence) {
    this.done = true;
    clearInterval(this.timer);
    this.handlers.state("closed", sentence);
  }

  // Pings, and drops a link that has gone silent: a cable pulled or a laptop
  // asleep may leave the socket looking open for minutes. A socket that has
  // not been welcomed in time is dropped too, and tried again.
  tick() {
    if (!this.ws) return;
    const now = performance.now();
    if (!this.welcomed) {
      if (now - this.openedAt > WELCOME_WAIT) this.drop();
      return;
    }
    const limit = this.inGame ? SILENCE_LIMIT_IN_GAME : SILENCE_LIMIT;
    if (now - this.heardAt > limit) {
      this.drop();
    } else if (now - this.pingedAt >= PING_EVERY) {
      this.pingedAt = now;
      this.send([MSG.PING, now]);
    }
  }
}
