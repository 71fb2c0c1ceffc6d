// people.js: players as the page shows them: an avatar, the name, an
// "account" mark for a logged-in user (a guest may pick a user's name), and a
// status badge. A player with an ID shows the server's avatar image, the
// uploaded one or the default the server draws; one without (the names of a
// local game) gets its initials on a circle coloured from its name.

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

// This page's own uploads, by player ID: a new upload gets a new URL, so the
// browser does not show the picture it already holds for the old one.
const uploads = new Map();

export function avatarUrl(playerId) {
  const url = `/api/players/${encodeURIComponent(playerId)}/avatar/`;
  const version = uploads.get(playerId);
  return version ? `${url}?v=${version}` : url;
}

export function avatarChanged(playerId) {
  uploads.set(playerId, Date.now());
}

function pictureOf(name, playerId) {
  const img = document.createElement("img");
  img.className = "avatar";
  img.alt = "";
  img.setAttribute("aria-hidden", "true");
  img.src = avatarUrl(playerId);
  img.onerror = () => img.replaceWith(initialsOf(name, playerId));
  return img;
}

export function avatar(name, playerId) {
  return playerId ? pictureOf(name, playerId) : initialsOf(name, null);
}

function initialsOf(name, id) {
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
  li.dataset.user = String(Boolean(player.user));
  li.append(avatar(player.name, player.player_id));
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = player.name + (me ? " (you)" : "");
  li.append(name);
  if (player.user) {
    const account = document.createElement("span");
    account.className = "tag account";
    account.textContent = "account";
    account.title = "A logged-in user";
    li.append(account);
  }
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
