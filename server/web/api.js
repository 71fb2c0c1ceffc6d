// api.js: the HTTP API of protocol.md ("HTTP API"), as JSON over fetch.
// Every call resolves to the answer's object or rejects with an ApiError
// carrying the server's stable error code and its sentence for people.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
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

export function createLobby(host, pointsToWin, maxPlayers) {
  return call("POST", "/api/create_lobby/", {
    host, points_to_win: pointsToWin, max_players: maxPlayers,
  });
}

export function joinLobby(lobbyId, guestName) {
  return call("POST", "/api/join_lobby/", { lobby_id: lobbyId, guest_name: guestName });
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
