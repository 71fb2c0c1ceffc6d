// render.js: draws one frame of a Match on the canvas, in field units (the
// canvas is sized to the field; CSS scales it to the window). Pure drawing:
// it reads the frame that play.js computed and changes nothing.

const BACKGROUND = "#10141c";
const LINE = "#2c3546";
const BALL = "#f4f4f4";
const OWN = "#ffd166";
const OTHER = "#8ecae6";
const TEXT = "#e8ecf2";

export function draw(canvas, match, frame, now) {
  const r = match.rules;
  if (canvas.width !== r.field_width || canvas.height !== r.field_height) {
    canvas.width = r.field_width;
    canvas.height = r.field_height;
  }
  const g = canvas.getContext("2d");
  g.fillStyle = BACKGROUND;
  g.fillRect(0, 0, r.field_width, r.field_height);

  g.strokeStyle = LINE;
  g.lineWidth = 4;
  g.setLineDash([16, 16]);
  g.beginPath();
  g.moveTo(r.field_width / 2, 0);
  g.lineTo(r.field_width / 2, r.field_height);
  g.stroke();
  g.setLineDash([]);
  if (!frame) return;

  const own = match.ownSides();
  const left = r.paddle_inset;
  const right = r.field_width - r.paddle_inset - r.paddle_width;
  [left, right].forEach((x, side) => {
    g.fillStyle = own.includes(side) ? OWN : OTHER;
    g.fillRect(x, frame.paddles[side] - r.paddle_height / 2, r.paddle_width, r.paddle_height);
  });

  g.fillStyle = TEXT;
  g.textAlign = "center";
  g.font = "bold 64px system-ui, sans-serif";
  g.fillText(String(frame.score[0]), r.field_width / 4, 80);
  g.fillText(String(frame.score[1]), (3 * r.field_width) / 4, 80);

  if (match.inPlay && !match.ended) {
    const half = r.ball_size / 2;
    g.fillStyle = BALL;
    g.fillRect(frame.ball[0] - half, frame.ball[1] - half, r.ball_size, r.ball_size);
  }

  const note = caption(match, frame, now);
  if (note) {
    g.font = "28px system-ui, sans-serif";
    g.fillStyle = TEXT;
    g.fillText(note, r.field_width / 2, r.field_height - 40);
  }
}

// One line over the field: why nothing moves, or what is about to happen.
function caption(match, frame, now) {
  for (const [, away] of match.away) {
    const left = Math.max(0, Math.ceil((away.until - now) / 1000));
    const paused = match.paused() ? "Paused: " : "";
    return `${paused}${away.name} lost connection (${left} s to come back)`;
  }
  const last = match.latest();
  if (last && last.tick < match.resumeTick) return "Resuming…";
  if (!match.inPlay && match.round && !match.ended) {
    const result = match.results.get(match.round.round);
    if (result) return `${match.players[result.winner].name} wins the round`;
  }
  if (match.inPlay && frame.serveWait > 0) {
    return `Serve in ${Math.ceil(frame.serveWait / match.rules.tick_rate)}`;
  }
  return "";
}
