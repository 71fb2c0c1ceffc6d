// people.js: players as the page shows them: an avatar (for now the
// initials on a circle whose colour comes from the player's ID, since guests
// have no picture), the name, and a status badge.

const STATUS_TEXT = {
  joined: "not connected",
  connected: "not ready",
  ready: "ready",
  playing: "playing",
  spectating: "watching",
  away: "connection lost",
  forfeited: "forfeited",
  closed: "gone",
};

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function initials(name) {
  const words = name.replace(/#\d+$/, "").trim().split(/[\s_.-]+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : [...(words[0] || "?")].slice(0, 2).join("");
  return letters.toUpperCase();
}

export function avatar(name, id) {
  const span = document.createElement("span");
  span.className = "avatar";
  span.textContent = initials(name);
  span.style.backgroundColor = `hsl(${hue(id || name)} 55% 42%)`;
  span.setAttribute("aria-hidden", "true");
  return span;
}

// One <li> for a LOBBY player map; `me` marks this page's own seat.
export function playerItem(player, me) {
  const li = document.createElement("li");
  li.className = "player";
  li.dataset.name = player.name;
  li.dataset.status = player.status;
  li.append(avatar(player.name, player.player_id));
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = player.name + (me ? " (you)" : "");
  li.append(name);
  if (player.host) {
    const host = document.createElement("span");
    host.className = "tag";
    host.textContent = "host";
    li.append(host);
  }
  const badge = document.createElement("span");
  badge.className = `badge ${player.status}`;
  // The host's START counts as its ready: "not ready" would mislead.
  const text = player.host && player.status === "connected" ? "connected" : STATUS_TEXT[player.status];
  badge.textContent = text || player.status;
  li.append(badge);
  return li;
}
