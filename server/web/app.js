// app.js: the page. A reference client of protocol.md, in plain modules:
//
//   api.js     the HTTP API (accounts, create, join, local start, results)
//   net.js     the socket: HELLO, msgpack, PING, reconnecting with the token
//   play.js    one game: prediction of own paddles, interpolation of the rest
//   render.js  drawing a frame on the canvas
//   keys.js    the keyboard
//   people.js  players, avatars and status badges
//
// This file holds the page's state and moves between its four screens:
// home (who plays, create, join, local game), lobby (players, ready,
// start), game (field, scores, schedule, players) and result (standings,
// rounds). A seat (its token and where to connect) is kept in
// sessionStorage, so a reload of the tab reconnects to the same lobby or
// game. Who plays is a guest, under the name typed on the home screen, or a
// logged-in user, whose session lives in cookies the server sets and who
// needs no name.

import * as api from "./api.js";
import { Connection, MSG } from "./net.js";
import { Match } from "./play.js";
import { draw } from "./render.js";
import * as keys from "./keys.js";
import { avatarChanged, avatarUrl, playerItem } from "./people.js";

const SAVED_SEAT = "pong.seat";
// Set while this browser is thought to hold a session: only then does a load
// ask GET /api/me/, whose 401 for a guest the browser would log as an error.
const HAS_SESSION = "pong.account";
const $ = (id) => document.getElementById(id);

const state = {
  user: null, // the logged-in user's profile (GET /api/me/), or null for a guest
  seat: null, // {kind: "lobby" | "local", token, lobbyId, name}
  conn: null,
  welcome: null,
  lobby: null, // the latest LOBBY map
  match: null, // the game being played or watched
  leaving: false,
  drawn: { score: "", tick: -1 },
};

// Screens and messages -------------------------------------------------------

function show(screen) {
  for (const id of ["home", "lobby", "game", "result"]) $(id).hidden = id !== screen;
  document.body.dataset.screen = screen;
}

let errorTimer = null;
function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function banner(text) {
  const box = $("banner");
  box.textContent = text || "";
  box.hidden = !text;
}

function setConnection(label, kind) {
  const el = $("connection");
  el.textContent = label;
  el.dataset.state = kind;
}

// Home ------------------------------------------------------------------------

// The name to create or join under: none for a logged-in user.
function playerName() {
  if (state.user) return null;
  const name = $("name").value.trim();
  if (!name) throw new Error("Type your name first.");
  localStorage.setItem("pong.name", name);
  return name;
}

function numberIn(id) {
  const value = Number.parseInt($(id).value, 10);
  return Number.isFinite(value) ? value : null;
}

async function attempt(action) {
  try {
    await action();
  } catch (error) {
    showError(error.message);
  }
}

function localNameInputs() {
  return [...$("local-names").querySelectorAll("input")];
}

function addLocalName() {
  const count = localNameInputs().length;
  if (count >= 8) return;
  const li = document.createElement("li");
  const input = document.createElement("input");
  input.maxLength = 29;
  input.value = `Player ${count + 1}`;
  input.setAttribute("aria-label", `Player ${count + 1}`);
  li.append(input);
  $("local-names").append(li);
}

// Who plays -------------------------------------------------------------------

function showUser(user) {
  state.user = user;
  if (user) localStorage.setItem(HAS_SESSION, "1");
  else localStorage.removeItem(HAS_SESSION);
  $("guest-box").hidden = Boolean(user);
  $("user-box").hidden = !user;
  $("password").value = "";
  if (!user) {
    $("me-avatar").removeAttribute("src");
    return;
  }
  $("me-name").textContent = user.username;
  $("me-avatar").src = avatarUrl(user.player_id);
}

function credentials() {
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) throw new Error("Type a username and a password.");
  return [username, password];
}

async function logIn(username, password) {
  await api.login(username, password);
  showUser(await api.me());
}

function setupIdentity() {
  $("login").onclick = () => attempt(() => logIn(...credentials()));
  $("register").onclick = () => attempt(async () => {
    const [username, password] = credentials();
    await api.register(username, password);
    await logIn(username, password);
  });
  $("password").addEventListener("keydown", (event) => {
    if (event.key === "Enter") $("login").click();
  });
  $("logout").onclick = () => attempt(async () => {
    try {
      await api.logout();
    } finally {
      showUser(null);
    }
  });
  $("avatar-file").onchange = () => attempt(async () => {
    const file = $("avatar-file").files[0];
    if (!file) return;
    try {
      await api.uploadAvatar(file);
    } finally {
      $("avatar-file").value = "";
    }
    avatarChanged(state.user.player_id);
    $("me-avatar").src = avatarUrl(state.user.player_id);
  });
}

// Runs a create or a join. A session that ended since the page learnt of it
// makes the server take this page for a guest with no name: the page says
// so and shows the guest's form again.
async function seatRequest(request) {
  try {
    return await request();
  } catch (error) {
    if (state.user && error.code === "missing_field" && !(await api.me())) {
      showUser(null);
      throw new Error("Your login has ended: log in again, or type a name to play as a guest.");
    }
    throw error;
  }
}

// What the server says of this browser's session, if it may hold one.
async function loadUser() {
  if (!localStorage.getItem(HAS_SESSION)) return;
  try {
    showUser(await api.me());
  } catch (error) {
    showError(error.message);
  }
}

function setupHome() {
  $("name").value = localStorage.getItem("pong.name") || "";
  addLocalName();
  addLocalName();
  $("local-add").onclick = addLocalName;
  $("local-remove").onclick = () => {
    const items = $("local-names").children;
    if (items.length > 2) items[items.length - 1].remove();
  };
  $("create").onclick = () => attempt(async () => {
    const name = playerName();
    const answer = await seatRequest(() => api.createLobby(name, numberIn("create-points"), numberIn("create-seats")));
    enterSeat({ kind: "lobby", token: answer.token, lobbyId: answer.lobby_id, name: answer.name });
  });
  $("join").onclick = () => attempt(async () => {
    const id = $("join-id").value.trim();
    if (!id) throw new Error("Type the lobby's ID.");
    const name = playerName();
    const answer = await seatRequest(() => api.joinLobby(id, name));
    if (answer.renamed) showError(answer.message);
    enterSeat({ kind: "lobby", token: answer.token, lobbyId: answer.lobby_id, name: answer.name });
  });
  $("join-id").addEventListener("keydown", (event) => {
    if (event.key === "Enter") $("join").click();
  });
  $("local-start").onclick = () => attempt(async () => {
    const names = localNameInputs().map((input) => input.value.trim());
    const answer = await api.startLocal(names, numberIn("local-points"));
    enterSeat({ kind: "local", token: answer.token, lobbyId: null, name: null });
  });
  $("again").onclick = () => leaveSeat();
}

// A seat: its socket, and what the server says on it -------------------------

// The page connects to the server that served it: that origin is the one
// the page's Content-Security-Policy allows, and it reaches this server even
// when the ws_url of the HTTP answers names another host for the same one.
function socketUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/`;
}

function enterSeat(seat) {
  state.seat = seat;
  state.lobby = null;
  state.match = null;
  state.leaving = false;
  sessionStorage.setItem(SAVED_SEAT, JSON.stringify(seat));
  show(seat.kind === "local" ? "game" : "lobby");
  $("lobby-id").textContent = seat.lobbyId || "";
  $("lobby-players").replaceChildren();
  state.conn = new Connection(socketUrl(), seat.token, { message: onMessage, state: onConnection });
  state.conn.open();
}

function leaveSeat() {
  if (state.conn) state.conn.close();
  state.conn = null;
  state.seat = null;
  state.match = null;
  sessionStorage.removeItem(SAVED_SEAT);
  banner("");
  setConnection("", "none");
  show("home");
}

function onConnection(kind, detail) {
  if (kind === "connecting") setConnection("connecting…", "connecting");
  else if (kind === "open") {
    setConnection("connected", "open");
    banner("");
  } else if (kind === "lost") {
    setConnection("reconnecting…", "lost");
    banner(`Connection lost. Reconnecting (attempt ${detail})…`);
  } else if (kind === "closed") {
    // For good: after the game's end the result stays on screen; otherwise
    // the seat is gone and the player is back at the start, told why.
    sessionStorage.removeItem(SAVED_SEAT);
    if (document.body.dataset.screen === "result") {
      setConnection("game over", "none");
      banner("");
      return;
    }
    const left = state.leaving;
    leaveSeat();
    if (!left) banner(detail);
  }
}

function onMessage(type, message) {
  const now = performance.now();
  const body = message[1];
  switch (type) {
    case MSG.WELCOME:
      state.welcome = body;
      if (state.match) state.match.restart();
      break;
    case MSG.LOBBY:
      state.lobby = body;
      renderLobby();
      renderPlayers();
      break;
    case MSG.GAME_START:
      state.conn.inGame = true;
      gameStarted(body);
      break;
    case MSG.SNAPSHOT:
      if (state.match) state.match.handle(type, message, now);
      break;
    case MSG.ROUND_START:
    case MSG.POINT:
    case MSG.ROUND_END:
    case MSG.AWAY:
    case MSG.BACK:
      if (!state.match) break;
      state.match.handle(type, message, now);
      logEvent(type, body);
      renderGame();
      break;
    case MSG.GAME_END:
      state.conn.inGame = false;
      if (state.match) state.match.handle(type, message, now);
      showResult(body);
      break;
    case MSG.ERROR:
      showError(body.message);
      break;
    case MSG.PONG:
      setConnection(`connected, ${Math.round(state.conn.rtt)} ms`, "open");
      break;
    default:
      break; // unknown types are ignored
  }
}

// Lobby -------------------------------------------------------------------------

function renderLobby() {
  const lobby = state.lobby;
  if (!lobby) return;
  const me = state.welcome && state.welcome.player_id;
  const mine = lobby.players.find((p) => p.player_id === me);
  const isHost = Boolean(mine && mine.host);
  $("lobby-id").textContent = lobby.lobby_id;
  $("lobby-rules").textContent =
    `First to ${lobby.points_to_win} wins a round; ${lobby.players.length} of ${lobby.max_players} seats taken.`;
  $("lobby-players").replaceChildren(...lobby.players.map((p) => playerItem(p, p.player_id === me)));

  const others = lobby.players.filter((p) => !p.host);
  const everyoneReady = others.length > 0 && others.every((p) => p.status === "ready");
  $("ready-box").hidden = isHost;
  $("ready").checked = Boolean(mine && mine.status === "ready");
  $("start").hidden = !isHost;
  $("start").disabled = !everyoneReady || lobby.status !== "open";
  let hint = "";
  if (lobby.status !== "open") hint = "The game is starting…";
  else if (isHost) hint = others.length ? (everyoneReady ? "Everyone is ready: start when you like." : "Waiting for everyone to be ready.") : "Waiting for players to join.";
  else hint = "The host starts the game once everyone is ready.";
  $("lobby-hint").textContent = hint;
}

function setupLobby() {
  $("ready").onchange = () => state.conn && state.conn.send([MSG.READY, $("ready").checked]);
  $("start").onclick = () => state.conn && state.conn.send([MSG.START]);
  $("leave").onclick = () => {
    state.leaving = true;
    if (state.conn) state.conn.send([MSG.LEAVE]);
  };
}

// Game --------------------------------------------------------------------------

function gameStarted(start) {
  if (state.match && state.match.id === start.game_id) {
    state.match.restart(); // the same game again, after a reconnect
  } else {
    state.match = new Match(start, (m) => state.conn && state.conn.send(m));
    $("events").replaceChildren();
    state.drawn = { score: "", tick: -1 };
    api.getGame(start.game_id).then((view) => {
      if (state.match && state.match.id === view.game_id) {
        state.match.merge(view);
        renderGame();
      }
    }).catch(() => {}); // only fills in rounds ended before this page came
  }
  const local = start.mode === "local";
  $("controls").textContent = keys.help(local, ["Left", "Right"]);
  show("game");
  renderGame();
}

function seatName(seat, players) {
  const found = (players || state.match.players).find((p) => p.seat === seat);
  return found ? found.name : `seat ${seat}`;
}

function renderGame() {
  const match = state.match;
  if (!match) return;
  const total = match.schedule.length;
  const round = match.round;
  let status = "Waiting for the first round…";
  if (round) {
    const n = `Round ${round.round + 1} of ${total}: ${round.left_name} vs ${round.right_name}`;
    if (match.mode === "local") status = n;
    else if (match.spectating()) {
      const next = match.schedule.findIndex((pair, i) => i > round.round && pair.some((s) => match.you.has(s)));
      status = `${n}. You are watching` + (next >= 0 ? `; you play in round ${next + 1}.` : ".");
    } else status = `${n}. You play on the ${match.ownSides()[0] === 0 ? "left" : "right"}.`;
  }
  $("game-status").textContent = status;
  document.body.dataset.role = match.spectating() ? "spectator" : "player";
  $("left-name").textContent = round ? round.left_name : "";
  $("right-name").textContent = round ? round.right_name : "";
  if (match.mode === "local" && round) {
    $("controls").textContent = keys.help(true, [round.left_name, round.right_name]);
  }

  $("schedule").replaceChildren(...match.schedule.map((pair, i) => roundItem(i, pair, match.results.get(i), match.roundState(i))));
  renderPlayers();
}

function roundItem(i, pair, result, roundState, players) {
  const li = document.createElement("li");
  li.className = roundState;
  li.dataset.round = String(i);
  let text = `${seatName(pair[0], players)} vs ${seatName(pair[1], players)}`;
  if (result) {
    li.dataset.score = `${result.score[0]}-${result.score[1]}`;
    text += `: ${result.score[0]}–${result.score[1]}, ${seatName(result.winner, players)} wins` + (result.forfeit ? " by forfeit" : "");
  } else if (roundState === "playing") text += " (now)";
  li.textContent = text;
  return li;
}

const EVENTS_SHOWN = 8;

// A line in the game's feed for each event worth telling, newest first.
function logEvent(type, body) {
  let text = null;
  if (type === MSG.ROUND_START) text = `Round ${body.round + 1}: ${body.left_name} vs ${body.right_name}`;
  else if (type === MSG.POINT) text = `${seatName(body.seat)} scores: ${body.score[0]}–${body.score[1]}`;
  else if (type === MSG.ROUND_END) text = `${seatName(body.winner)} wins round ${body.round + 1}` + (body.forfeit ? " by forfeit" : "");
  else if (type === MSG.AWAY) text = `${body.name} lost connection; ${Math.round(body.grace)} s to come back`;
  else if (type === MSG.BACK) text = `${body.name === null ? "The game" : body.name} is back`;
  if (text === null) return;
  const li = document.createElement("li");
  li.textContent = text;
  const list = $("events");
  list.prepend(li);
  while (list.children.length > EVENTS_SHOWN) list.lastChild.remove();
}

function renderPlayers() {
  const match = state.match;
  if (!match) return;
  const me = state.welcome && state.welcome.player_id;
  let items;
  if (state.lobby) {
    items = state.lobby.players.map((p) => playerItem(p, p.player_id === me));
  } else {
    const playing = match.round && match.inPlay ? [match.round.left, match.round.right] : [];
    items = match.players.map((p) => playerItem({
      name: p.name, player_id: null, host: false,
      status: match.away.size ? "away" : playing.includes(p.seat) ? "playing" : "spectating",
    }, false));
  }
  $("game-players").replaceChildren(...items);
}

function frame(now) {
  const match = state.match;
  if (match && !$("game").hidden) {
    match.advance(now, (side) => keys.moveFor(side, match.mode === "local"));
    const view = match.view(now);
    draw($("field"), match, view, now);
    if (view) {
      const score = `${view.score[0]} : ${view.score[1]}`;
      if (score !== state.drawn.score) {
        state.drawn.score = score;
        $("score").textContent = score;
        $("score").dataset.left = String(view.score[0]);
        $("score").dataset.right = String(view.score[1]);
      }
      const last = match.latest();
      if (last.tick !== state.drawn.tick) {
        state.drawn.tick = last.tick;
        $("field").dataset.tick = String(last.tick);
      }
    }
  }
  requestAnimationFrame(frame);
}

// Result ------------------------------------------------------------------------

function showResult(end) {
  $("result-game").textContent = end.game_id;
  const title = $("result-title");
  title.dataset.status = end.status;
  if (end.status === "finished") {
    title.textContent = `${end.winner_name} wins the game`;
    title.dataset.winner = end.winner_name;
  } else if (end.status === "interrupted") title.textContent = "The game was interrupted";
  else title.textContent = "The game stopped because of a server error";

  const rows = (end.standings || []).map((s, i) => {
    const tr = document.createElement("tr");
    for (const value of [i + 1, s.name, s.wins, s.points_for, s.points_against]) {
      const td = document.createElement("td");
      td.textContent = String(value);
      tr.append(td);
    }
    return tr;
  });
  $("standings").tBodies[0].replaceChildren(...rows);
  const rounds = end.rounds || [];
  $("result-rounds").replaceChildren(...rounds.map((r) => roundItem(r.round, [r.left, r.right], r, "done", end.standings)));
  if (!end.saved) showError("The server could not store this result.");
  sessionStorage.removeItem(SAVED_SEAT);
  show("result");
}

// Start -------------------------------------------------------------------------

keys.listen(window, () => !$("game").hidden);
setupHome();
setupIdentity();
setupLobby();
show("home");
requestAnimationFrame(frame);

const saved = sessionStorage.getItem(SAVED_SEAT);
if (saved) {
  try {
    enterSeat(JSON.parse(saved));
  } catch {
    sessionStorage.removeItem(SAVED_SEAT);
  }
}

loadUser();

// For tests and for trying the reconnect by hand: drop the socket as a
// network failure would.
window.pongClient = { dropConnection: () => state.conn && state.conn.drop() };
