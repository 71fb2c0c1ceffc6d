// keys.js: which keys are held, and the paddle move they ask for.
// Remote play: W/S or the arrow keys move the own paddle. Local play: the
// left paddle of the round has W/S, the right one the arrow keys.

const held = new Set();
const GAME_KEYS = new Set(["ArrowUp", "ArrowDown", "KeyW", "KeyS"]);

export function listen(target, active) {
  target.addEventListener("keydown", (event) => {
    if (!active() || !GAME_KEYS.has(event.code)) return;
    held.add(event.code);
    event.preventDefault(); // the arrows would scroll the page
  });
  target.addEventListener("keyup", (event) => held.delete(event.code));
  target.addEventListener("blur", () => held.clear());
}

function axis(up, down) {
  return (held.has(down) ? 1 : 0) - (held.has(up) ? 1 : 0);
}

// The move (-1 up, 0 still, 1 down) for a side, given the game's mode.
export function moveFor(side, local) {
  if (local) return side === 0 ? axis("KeyW", "KeyS") : axis("ArrowUp", "ArrowDown");
  return Math.max(-1, Math.min(1, axis("KeyW", "KeyS") + axis("ArrowUp", "ArrowDown")));
}

export function help(local, names) {
  if (local) return `${names[0]}: W / S, ${names[1]}: ↑ / ↓`;
  return "Move with ↑ / ↓ or W / S";
}
