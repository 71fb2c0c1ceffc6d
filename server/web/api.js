// api.js: the HTTP API of protocol.md ("HTTP API"), as JSON over fetch.
// Every call resolves to the answer's object or rejects with an ApiError
// carrying the server's stable error code and its sentence for people.
//
// A logged-in page holds its session in the `sessionid` cookie, which the
// browser sends by itself and scripts cannot read. The server then wants
// proof on every unsafe request that this page, not another site, sent it:
// the `csrftoken` cookie's value in an X-CSRFToken header ("Accounts and
// sessions"). Every POST and PUT here carries it, logged in or not, since a
// session cookie may be present without the page knowing.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const CSRF_COOKIE = "csrftoken";
const SAFE_METHODS = new Set(["GET", "HEAD"]);

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return null;
}

// The CSRF token: the cookie's, or a new one from the server, which also
// sets the cookie that must match it.
async function csrfToken() {
  const kept = cookie(CSRF_COOKIE);
  if (kept) return kept;
  const answer = await send("GET", "/api/csrf/", {});
  return answer.csrf_token;
}

async function call(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return send(method, path, headers, payload);
}

async function send(method, path, headers, payload) {
  const all = { Accept: "application/json", ...headers };
  if (!SAFE_METHODS.has(method)) all["X-CSRFToken"] = await csrfToken();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: all,
      body: payload,
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(0, "network", "The server cannot be reached.");
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = answer && answer.error;
    throw new ApiError(
      response.status,
      error ? error.code : "unknown",
      error ? error.message : `The server answered ${response.status}.`,
    );
  }
  return answer;
}

// `host` may be null for a logged-in user, who hosts under their username.
export function createLobby(host, pointsToWin, maxPlayers) {
  const body = { points_to_win: pointsToWin, max_players: maxPlayers };
  if (host !== null) body.host = host;
  return call("POST", "/api/create_lobby/", body);
}

// `guestName` may be null for a logged-in user, who joins as themself.
export function joinLobby(lobbyId, guestName) {
  const body = { lobby_id: lobbyId };
  if (guestName !== null) body.guest_name = guestName;
  return call("POST", "/api/join_lobby/", body);
}

// A local game: every name plays on this keyboard, one socket drives all seats.
export function startLocal(names, pointsToWin) {
  const body = { points_to_win: pointsToWin };
  names.forEach((name, i) => { body[`player-${i + 1}`] = name; });
  return call("POST", "/api/start_game/", body);
}

export function getGame(gameId) {
  return call("GET", `/api/game/${encodeURIComponent(gameId)}/`);
}

// Accounts ----------------------------------------------------------------------

export function register(username, password) {
  return call("POST", "/api/register/", { username, password });
}

// Sets the session and CSRF cookies; the session itself never reaches script.
export function login(username, password) {
  return call("POST", "/api/login/", { username, password });
}

export function logout() {
  return call("POST", "/api/logout/", {});
}

// The logged-in user's profile, or null for a guest (no live session). The
// browser logs the 401 a guest gets as a console error, so the page asks
// only when it has reason to think it holds a session.
export async function me() {
  try {
    return await call("GET", "/api/me/");
  } catch (error) {
    if (error.code === "login_required") return null;
    throw error;
  }
}

// `file` is a File from an <input type=file>: a PNG or a JPEG, sent as is.
export function uploadAvatar(file) {
  return send("PUT", "/api/me/avatar/", { "Content-Type": file.type }, file);
}
