// play.js: one game as this client sees it, from GAME_START to GAME_END.
//
// The server is the authority and sends a SNAPSHOT every tick. Drawing the
// latest one as it arrives would stutter with every late packet, and would
// show our own paddle one round trip after the key press. So:
//
// - Own paddles are predicted. Every client tick (the server's tick rate)
//   we read the keys, send INPUT with the next sequence number, remember it,
//   and move the paddle at once by move * paddle_speed / tick_rate. A
//   SNAPSHOT says where the server has the paddle after the input it acks;
//   we start from there and replay the inputs it has not acked yet. A
//   correction is not drawn as a jump: it goes into an offset that fades.
// - Everything else is interpolated. Each snapshot's tick is mapped onto
//   the local clock; we draw the world as it was a little in the past (two
//   ticks and some jitter margin), between the two snapshots around that
//   moment, so motion is smooth at any snapshot rate. Past the newest
//   snapshot the ball is extrapolated for a few ticks along its velocity.
//
// Inputs are sent only while a paddle may move: in a round, not paused by
// an away player, and not in the break after the round.
//
// The prediction counts one server tick per input sent. When two inputs
// reach the server within one tick, only the second is applied, so for a
// moment the predicted paddle is one step off; the next snapshot corrects it
// and the correction fades in. Stamping each input with the server tick it
// was meant for would remove that step, at the price of a clock
// synchronised to the server's through PING and PONG.

import { MSG } from "./net.js";

const KEEP_SNAPSHOTS = 64;
const JITTER_MS = 30; // extra render delay for uneven arrival
const MAX_EXTRAPOLATE = 3; // ticks the ball is drawn past the newest snapshot
const CORRECTION_FADE_MS = 80; // time constant of the fading correction
const MAX_PENDING = 120; // unacked inputs kept; more means the server is not stepping

// Snapshot fields by position (protocol.md, "SNAPSHOT (68)").
export function parseSnapshot(m) {
  return {
    tick: m[1], round: m[2], ballX: m[3], ballY: m[4], ballVx: m[5], ballVy: m[6],
    paddles: [m[7], m[8]], score: [m[9], m[10]], acks: [m[11], m[12]], serveWait: m[13],
  };
}

const lerp = (a, b, t) => a + (b - a) * t;

export class Match {
  // `start` is GAME_START's map; `send(message)` writes to the socket.
  constructor(start, send) {
    this.id = start.game_id;
    this.mode = start.mode;
    this.rules = start.rules;
    this.players = start.players;
    this.schedule = start.rounds;
    this.you = new Set(start.you);
    this.send = send;
    this.tickMs = 1000 / this.rules.tick_rate;
    this.step = this.rules.paddle_speed / this.rules.tick_rate;
    this.minY = this.rules.paddle_height / 2;
    this.maxY = this.rules.field_height - this.rules.paddle_height / 2;
    this.results = new Map(); // round -> ROUND_END map
    this.round = null; // ROUND_START map of the round in play or just ended
    this.inPlay = false; // between ROUND_START and ROUND_END
    this.snapshots = [];
    this.clockOffset = null; // local ms minus tick * tickMs, as estimated
    this.away = new Map(); // seat -> {name, until}
    this.resumeTick = 0; // after BACK: frozen until this tick
    this.lastPoint = null;
    this.ended = null; // GAME_END map
    this.restart();
  }

  // A new socket for the seat starts the input count afresh (protocol.md,
  // "Reconnecting"); nothing sent before is ever acked again.
  restart() {
    this.sides = [null, null];
    this.seq = new Map();
    this.accumulated = 0;
    this.lastFrame = null;
  }

  // Sides 0 (left) and 1 (right) that this socket drives in the current round.
  ownSides() {
    if (!this.round) return [];
    return [0, 1].filter((side) => this.you.has(side ? this.round.right : this.round.left));
  }

  spectating() {
    return this.round !== null && this.ownSides().length === 0;
  }

  latest() {
    return this.snapshots.length ? this.snapshots[this.snapshots.length - 1] : null;
  }

  // The game stands still while a player of the round in play is away; an
  // away spectator stops nothing.
  paused() {
    const round = this.round;
    return round !== null && (this.away.has(round.left) || this.away.has(round.right));
  }

  canMove() {
    const last = this.latest();
    return this.inPlay && !this.paused() && !this.ended &&
      (!last || last.tick >= this.resumeTick);
  }

  // Server messages ---------------------------------------------------------

  handle(type, message, now) {
    const body = message[1];
    if (type === MSG.SNAPSHOT) this.snapshot(parseSnapshot(message), now);
    else if (type === MSG.ROUND_START) {
      this.round = body;
      this.inPlay = true;
      this.sides = [null, null];
    } else if (type === MSG.POINT) this.lastPoint = { ...body, at: now };
    else if (type === MSG.ROUND_END) {
      this.results.set(body.round, body);
      // A forfeit means the away player's grace ran out: it is not coming back.
      if (body.forfeit) this.away.delete(body.winner === body.left ? body.right : body.left);
      this.inPlay = false;
      this.sides = [null, null];
    } else if (type === MSG.AWAY) {
      this.away.set(body.seat, { name: body.name, until: now + body.grace * 1000 });
    } else if (type === MSG.BACK) {
      if (body.seat === null) this.away.clear();
      else this.away.delete(body.seat);
      const last = this.latest();
      this.resumeTick = (last ? last.tick : 0) + body.resume_in;
    } else if (type === MSG.GAME_END) this.ended = body;
  }

  snapshot(snap, now) {
    const sample = now - snap.tick * this.tickMs;
    if (this.clockOffset === null || sample < this.clockOffset) this.clockOffset = sample;
    else this.clockOffset += (sample - this.clockOffset) * 0.02; // follow a slower link
    this.snapshots.push(snap);
    if (this.snapshots.length > KEEP_SNAPSHOTS) this.snapshots.shift();
    this.reconcile(snap, now);
  }

  // Prediction --------------------------------------------------------------

  reconcile(snap, now) {
    const moving = this.canMove();
    for (const side of [0, 1]) {
      const own = this.sides[side];
      if (!own || !moving) {
        this.sides[side] = null;
        continue;
      }
      own.pending = own.pending.filter((input) => input.seq > snap.acks[side]);
      let y = snap.paddles[side];
      for (const input of own.pending) y = this.clamp(y + input.move * this.step);
      own.correction = this.fading(own, now) + own.y - y;
      own.correctedAt = now;
      own.y = y;
    }
  }

  // Called every animation frame with the move (-1..1) wanted for each own
  // side; runs as many client ticks as the time since the last frame holds.
  advance(now, moveFor) {
    if (this.lastFrame === null) this.lastFrame = now;
    this.accumulated = Math.min(this.accumulated + now - this.lastFrame, 5 * this.tickMs);
    this.lastFrame = now;
    while (this.accumulated >= this.tickMs) {
      this.accumulated -= this.tickMs;
      if (this.canMove()) for (const side of this.ownSides()) this.input(side, moveFor(side));
    }
  }

  input(side, move) {
    const last = this.latest();
    let own = this.sides[side];
    if (!own) {
      if (!last) return;
      own = { y: last.paddles[side], pending: [], lastMove: 0, correction: 0, correctedAt: 0 };
      this.sides[side] = own;
    }
    // A held key needs one INPUT per tick to be predicted tick by tick; a
    // released one needs a single 0, then nothing while it stays released.
    if (move === 0 && own.lastMove === 0) return;
    own.lastMove = move;
    const seat = side ? this.round.right : this.round.left;
    const seq = (this.seq.get(seat) || 0) + 1;
    this.seq.set(seat, seq);
    this.send(this.mode === "local" ? [MSG.INPUT, seq, move, seat] : [MSG.INPUT, seq, move]);
    if (own.pending.length >= MAX_PENDING) own.pending.shift();
    own.pending.push({ seq, move });
    own.y = this.clamp(own.y + move * this.step);
  }

  // What is left at `now` of an own paddle's last correction.
  fading(own, now) {
    return own.correction * Math.exp(-(now - own.correctedAt) / CORRECTION_FADE_MS);
  }

  clamp(y) {
    return Math.min(this.maxY, Math.max(this.minY, y));
  }

  // What to draw ------------------------------------------------------------

  // The world at `now`: the ball and both paddles, the score and the serve
  // countdown of the snapshot shown.
  view(now) {
    const snaps = this.snapshots;
    if (!snaps.length) return null;
    const newest = snaps[snaps.length - 1];
    const delayTicks = 2 + JITTER_MS / this.tickMs;
    const at = (now - this.clockOffset) / this.tickMs - delayTicks;
    let i = snaps.length - 1;
    while (i > 0 && snaps[i].tick > at) i -= 1;
    const a = snaps[i];
    const b = snaps[i + 1];
    const frame = {
      ball: [a.ballX, a.ballY],
      paddles: [...a.paddles],
      score: newest.score,
      serveWait: newest.serveWait,
      round: newest.round,
    };
    if (b && at > a.tick) {
      const t = (at - a.tick) / (b.tick - a.tick);
      // A point or a serve puts the ball back at the centre: a jump, not a path.
      const jumped = b.serveWait > a.serveWait || b.round !== a.round ||
        b.score[0] !== a.score[0] || b.score[1] !== a.score[1];
      frame.ball = jumped ? [b.ballX, b.ballY]
        : [lerp(a.ballX, b.ballX, t), lerp(a.ballY, b.ballY, t)];
      frame.paddles = [lerp(a.paddles[0], b.paddles[0], t), lerp(a.paddles[1], b.paddles[1], t)];
    } else if (!b && a.serveWait === 0 && this.inPlay) {
      const ahead = Math.min(Math.max(at - a.tick, 0), MAX_EXTRAPOLATE);
      const half = this.rules.ball_size / 2;
      frame.ball = [
        a.ballX + a.ballVx * ahead,
        Math.min(this.rules.field_height - half, Math.max(half, a.ballY + a.ballVy * ahead)),
      ];
    }
    for (const side of [0, 1]) {
      const own = this.sides[side];
      if (!own) continue;
      frame.paddles[side] = this.clamp(own.y + this.fading(own, now));
    }
    return frame;
  }

  // The standing of the round with index `i`: "done", "playing" or "pending".
  roundState(i) {
    if (this.results.has(i)) return "done";
    if (this.round && this.round.round === i && this.inPlay) return "playing";
    return "pending";
  }

  // Fills in rounds that ended before this page saw the game (a reload).
  merge(view) {
    for (const r of view.rounds) {
      if (r.status === "pending" || this.results.has(r.round)) continue;
      const winner = r.winner === r.players[0] ? r.seats[0] : r.seats[1];
      this.results.set(r.round, {
        round: r.round, left: r.seats[0], right: r.seats[1], score: r.score,
        winner, forfeit: r.status === "forfeit",
      });
    }
  }
}
