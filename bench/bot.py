"""Bot players for the Pong server: a small client library and a command line.

``python -m bench.bot --url https://localhost:8443 --insecure`` creates a
lobby as bot-1, seats the other bots, connects and readies them all, starts
the game and plays it to the end, printing each point and each round's end,
then the winner, the standings and whether the server saved the result.

Theory of operation. ``Api`` speaks the HTTP API (stdlib ``urllib`` in a
worker thread, so no dependency beyond the server's own). A ``Bot`` is one
WebSocket: it says HELLO with its token, then a reader task decodes every
server message, keeps the latest lobby, game, round and snapshot, and answers
each SNAPSHOT with one INPUT for each seat it drives in the round being
played. The move steers the paddle toward the ball, proportionally so that it
settles instead of overshooting. Sequence numbers acked by later snapshots
are recorded, and the time from sending an input to seeing it acked gives the
input round trip.

A perfect follower only loses once the ball outruns its paddle, which takes a
long rally, so bots play with a ``skill``: each time the ball starts toward a
bot, the bot decides at random whether to meet it, and if not, it keeps its
paddle out of the ball's way. Skill 1 meets every ball it can reach; skill 0
lets every ball pass. Games then end in seconds, and a seed makes the
decisions repeatable (the server's serve angles are its own).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import http.client
import json
import random
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from server import protocol

# Low enough that a four-player game to 3 points (six rounds) ends well
# within the command line's default two-minute timeout.
DEFAULT_SKILL = 0.3
HTTP_TIMEOUT = 10.0  # seconds for one HTTP request
HELLO_TIMEOUT = 10.0  # seconds from opening a socket to its WELCOME
# Snapshots are under 100 bytes and GAME_END lists every round; nothing the
# server sends comes near this.
MAX_MESSAGE = 64 * 1024


class BotError(Exception):
    """A bot could not do its part: the server refused, or went away."""


class ApiError(BotError):
    """The HTTP API answered with an error: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"HTTP {status} {code}: {message}")


def client_ssl_context(insecure: bool) -> ssl.SSLContext:
    """TLS settings for both HTTP and WebSocket; ``insecure`` skips all checks.

    The server makes itself a self-signed certificate on first start, which no
    client trusts; --insecure is for exactly that, as ``curl -k`` is.
    """
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# HTTP ------------------------------------------------------------------------


class Api:
    """The server's HTTP API at ``base_url`` (``http(s)://host:port``)."""

    def __init__(self, base_url: str, insecure: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.ssl = client_ssl_context(insecure)

    async def get(self, path: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, "GET", path, None, None)

    async def post(
        self, path: str, body: Mapping[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        """POST ``body`` as JSON; the answer's JSON, or ApiError if refused."""
        return await asyncio.to_thread(self._request, "POST", path, body, token)

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        token: str | None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.base_url + path
        request = urllib.request.Request(url, data, headers, method=method)
        context = self.ssl if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(
                request, timeout=HTTP_TIMEOUT, context=context
            ) as response:
                return _json_object(response.read(), url)
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from exc
        except urllib.error.URLError as exc:
            hint = _tls_hint(exc.reason)
            raise BotError(f"cannot reach {url}: {exc.reason}{hint}") from exc
        except (OSError, http.client.HTTPException) as exc:
            # HTTPException: the connection dropped in the middle of an answer.
            raise BotError(f"{method} {url} failed: {exc!r}") from exc


def _json_object(raw: bytes, url: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BotError(f"{url} answered something that is not JSON") from exc
    if not isinstance(value, dict):
        raise BotError(f"{url} answered JSON that is not an object")
    return value


def _api_error(exc: urllib.error.HTTPError) -> ApiError:
    try:
        error = json.loads(exc.read())["error"]
        return ApiError(exc.code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return ApiError(exc.code, "unknown", exc.reason or "no error body")


def _tls_hint(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return " (a self-signed certificate? try --insecure)"
    return ""


# One bot ---------------------------------------------------------------------


class Snapshot(NamedTuple):
    """One SNAPSHOT (68), field by field, in protocol order."""

    tick: int
    round: int
    ball_x: float
    ball_y: float
    ball_vx: float
    ball_vy: float
    left_y: float
    right_y: float
    left_score: int
    right_score: int
    left_ack: int
    right_ack: int
    serve_wait: int


Listener = Callable[["Bot", int, list[Any]], None]


class Bot:
    """One socket, for one lobby seat or for every seat of a local game.

    Call ``connect``, then ``ready`` or ``start`` as the lobby needs, then
    ``finished`` to wait for the game's end; ``close`` in any case. Every
    attribute below is the latest the server said, for callers to inspect.
    """

    def __init__(
        self,
        name: str,
        token: str,
        ws_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        skill: float | Mapping[int, float] = 1.0,
        seed: int | None = None,
        listener: Listener | None = None,
        autoplay: bool = True,
    ) -> None:
        self.name = name
        self.token = token
        self.ws_url = ws_url
        self.ssl_context = ssl_context
        self.skill = skill
        self.rng = random.Random(seed)
        self.listener = listener
        self.autoplay = autoplay  # off: the caller sends every INPUT itself

        self.welcome: dict[str, Any] | None = None
        self.lobby: dict[str, Any] | None = None
        self.game: dict[str, Any] | None = None  # the GAME_START payload
        self.seats: list[int] = []  # the game seats this socket drives
        self.round: dict[str, Any] | None = None  # the latest ROUND_START
        self.snapshot: Snapshot | None = None
        self.snapshots_by_round: collections.Counter[int] = collections.Counter()
        self.inputs_by_round: collections.Counter[int] = collections.Counter()
        self.points: list[dict[str, Any]] = []
        self.rounds: list[dict[str, Any]] = []  # ROUND_END payloads
        self.result: dict[str, Any] | None = None  # the GAME_END payload
        self.errors: list[dict[str, Any]] = []
        self.pongs: list[tuple[float, int]] = []  # (client time echoed, tick)
        self.acked: list[int] = []  # each new ack of one of our inputs, in order
        self.rtts: list[float] = []  # seconds from sending an input to its ack
        self.closed = False
        self.close_code: int | None = None
        self.failure: BaseException | None = None

        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._seq = 0
        # Per seat, inputs sent and not yet acked, as (seq, monotonic time).
        self._pending: dict[int, collections.deque[tuple[int, float]]] = {}
        self._trying = [True, True]  # per side: meet the ball now coming?
        self._approaching = [False, False]

    # Lifecycle ---------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket, say HELLO, and return once WELCOME has arrived."""
        try:
            self._ws = await connect(
                self.ws_url,
                ssl=self.ssl_context if self.ws_url.startswith("wss:") else None,
                max_size=MAX_MESSAGE,
                compression=None,
                open_timeout=HELLO_TIMEOUT,
            )
        except (OSError, WebSocketException, TimeoutError) as exc:
            why = f"{exc}{_tls_hint(exc)}"
            raise BotError(f"{self.name}: cannot open {self.ws_url}: {why}") from exc
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.send(protocol.HELLO, self.token)
        try:
            await self.wait_until(lambda: self.welcome is not None, HELLO_TIMEOUT)
        except TimeoutError:
            raise BotError(
                f"{self.name}: no WELCOME within {HELLO_TIMEOUT:g} s"
            ) from None

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def finished(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the server closes the socket; the GAME_END payload."""
        async with asyncio.timeout(timeout):
            await self.wait_until(lambda: self.result is not None)
            await self.wait_closed()
        assert self.result is not None
        return self.result

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float | None = None
    ) -> None:
        """Wait for ``predicate`` to hold; it is checked after every message.

        Raises BotError if the socket closes first, since then nothing that
        could make it hold will arrive.
        """
        async with asyncio.timeout(timeout), self._changed:
            while True:
                self._raise_failure()
                if predicate():
                    return
                if self.closed:
                    raise BotError(f"{self.name}: {self._closed_why()}")
                await self._changed.wait()

    async def wait_closed(self, timeout: float | None = None) -> int | None:
        """Wait until the socket has closed; its close code."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.closed)
        self._raise_failure()
        return self.close_code

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise BotError(f"{self.name}: {self.failure!r}") from self.failure

    def _closed_why(self) -> str:
        why = f"socket closed with code {self.close_code}"
        if self.errors:
            last = self.errors[-1]
            why += f" after error {last.get('code')}: {last.get('message')}"
        return why

    # Sending -----------------------------------------------------------------

    async def send(self, *fields: Any) -> None:
        """Send one message, ``[type, *fields]``, as a binary msgpack frame."""
        await self.send_raw(msgpack.packb(list(fields)))

    async def send_raw(self, data: bytes | str) -> None:
        """Send one frame as given: binary for bytes, text for str."""
        if self._ws is None:
            raise BotError(f"{self.name}: not connected")
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise BotError(f"{self.name}: {self._closed_why()}") from exc

    async def ready(self, ready: bool = True) -> None:
        await self.send(protocol.READY, ready)

    async def ping(self, client_time: float) -> None:
        """PING; the PONG lands in ``pongs``."""
        await self.send(protocol.PING, client_time)

    async def start(self) -> None:
        """As host, start the lobby's game; it begins with GAME_START."""
        await self.send(protocol.START)

    # Receiving ---------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                if isinstance(data, str):
                    raise BotError("the server sent a text frame")
                await self._handle(msgpack.unpackb(data))
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bad message or our bug: waiters must hear it
            self.failure = exc
            await self._ws.close()
        finally:
            self.closed = True
            self.close_code = self._ws.close_code
            async with self._changed:
                self._changed.notify_all()

    async def _handle(self, message: list[Any]) -> None:
        kind = message[0]
        payload = message[1] if len(message) > 1 else None
        if kind == protocol.SNAPSHOT:
            await self._on_snapshot(Snapshot(*message[1:]))
        elif kind == protocol.WELCOME:
            self.welcome = payload
        elif kind == protocol.LOBBY:
            self.lobby = payload
        elif kind == protocol.GAME_START:
            self.game = payload
            self.seats = list(payload["you"])
        elif kind == protocol.ROUND_START:
            self.round = payload
            self._approaching = [False, False]
        elif kind == protocol.POINT:
            self.points.append(payload)
        elif kind == protocol.ROUND_END:
            self.rounds.append(payload)
        elif kind == protocol.GAME_END:
            self.result = payload
        elif kind == protocol.ERROR:
            self.errors.append(payload)
        elif kind == protocol.PONG:
            self.pongs.append((message[1], message[2]))
        if self.listener is not None:
            self.listener(self, kind, message)

    async def _on_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.snapshots_by_round[snap.round] += 1
        current = self.round
        if self.game is None or current is None or snap.round != current["round"]:
            return  # the round's start is not here yet
        for side, seat in enumerate((current["left"], current["right"])):
            if seat not in self.seats:
                continue
            self._record_ack(seat, snap.left_ack if side == 0 else snap.right_ack)
            if not self.autoplay:
                continue
            try:
                await self.send_input(seat, self._move(side, seat, snap))
            except BotError:
                # The server closed the socket after this snapshot; what it
                # sent before closing (GAME_END) is still to be read.
                return
            self.inputs_by_round[snap.round] += 1

    def _record_ack(self, seat: int, ack: int) -> None:
        pending = self._pending.setdefault(seat, collections.deque())
        if not pending or pending[0][0] > ack:
            return
        now = time.monotonic()
        while pending and pending[0][0] <= ack:
            seq, sent = pending.popleft()
            if seq == ack:  # earlier ones were superseded, never applied
                self.rtts.append(now - sent)
        self.acked.append(ack)

    async def send_input(self, seat: int, move: float) -> int:
        """Send INPUT for game ``seat`` with the next sequence number; that number.

        A local game's socket names the seat; a lobby seat's socket has one.
        """
        if self.game is None:
            raise BotError(f"{self.name}: no game to send input to")
        self._seq += 1
        seq = self._seq
        self._pending.setdefault(seat, collections.deque()).append(
            (seq, time.monotonic())
        )
        if self.game["mode"] == "local":
            await self.send(protocol.INPUT, seq, move, seat)
        else:
            await self.send(protocol.INPUT, seq, move)
        return seq

    # Playing -----------------------------------------------------------------

    def _move(self, side: int, seat: int, snap: Snapshot) -> float:
        assert self.game is not None
        rules = self.game["rules"]
        paddle_y = snap.left_y if side == 0 else snap.right_y
        step = rules["paddle_speed"] / rules["tick_rate"]

        # Decide once per approach, when the ball turns toward this side.
        approaching = snap.ball_vx < 0 if side == 0 else snap.ball_vx > 0
        if approaching and not self._approaching[side]:
            self._trying[side] = self.rng.random() < self._skill(seat)
        self._approaching[side] = approaching

        target = snap.ball_y
        if approaching and not self._trying[side]:
            target = _out_of_the_way(snap.ball_y, paddle_y, rules, step)
        # Full speed while far, then in proportion, so the paddle settles
        # on the target rather than overshooting it every other tick.
        return max(-1.0, min(1.0, (target - paddle_y) / step))

    def _skill(self, seat: int) -> float:
        if isinstance(self.skill, Mapping):
            return self.skill.get(seat, 1.0)
        return self.skill


def _out_of_the_way(
    ball_y: float, paddle_y: float, rules: Mapping[str, float], step: float
) -> float:
    """A paddle centre as near ``paddle_y`` as may be that the ball misses."""
    half = rules["paddle_height"] / 2
    # Clear of the ball by one step more than a touch, so a tick of ball
    # motion toward the paddle does not close the gap.
    reach = half + rules["ball_size"] / 2 + 2 * step
    low, high = half, rules["field_height"] - half
    spots = [y for y in (ball_y - reach, ball_y + reach) if low <= y <= high]
    if not spots:  # cannot happen with a paddle under half the field's height
        return paddle_y
    return min(spots, key=lambda y: abs(y - paddle_y))


# Whole games -----------------------------------------------------------------


@dataclass
class GameRun:
    """A game played by bots to its end."""

    lobby_id: str | None
    game_id: str
    bots: list[Bot]
    result: dict[str, Any]  # GAME_END, as the first bot saw it
    start: dict[str, Any] | None  # start_game's answer, if started over HTTP


def everyone_ready(lobby: Mapping[str, Any] | None, players: int) -> bool:
    """Whether a LOBBY view shows ``players`` members the host may start with."""
    if lobby is None or len(lobby["players"]) != players:
        return False
    return all(
        p["status"] == "ready" or (p["host"] and p["status"] == "connected")
        for p in lobby["players"]
    )


async def run_lobby_game(
    api: Api,
    players: int = 2,
    points: int = 3,
    *,
    start_over_http: bool = True,
    skill: float | Sequence[float] = DEFAULT_SKILL,
    seed: int | None = None,
    listener: Listener | None = None,
) -> GameRun:
    """Create a lobby as bot-1, join bot-2.., ready, start, play to the end.

    ``skill`` is one value for every bot or one per bot in seat order;
    ``listener`` hears every message the host's socket receives.
    """
    skills = [skill] * players if isinstance(skill, int | float) else list(skill)
    created = await api.post(
        "/api/create_lobby/",
        {"host": "bot-1", "points_to_win": points, "max_players": players},
    )
    lobby_id = created["lobby_id"]
    seats = [created]
    for n in range(2, players + 1):
        body = {"lobby_id": lobby_id, "guest_name": f"bot-{n}"}
        seats.append(await api.post("/api/join_lobby/", body))

    rng = random.Random(seed)
    bots = [
        Bot(
            s["name"],
            s["token"],
            s["ws_url"],
            ssl_context=api.ssl,
            skill=skills[i],
            seed=rng.getrandbits(64),
            listener=listener if i == 0 else None,
        )
        for i, s in enumerate(seats)
    ]
    host = bots[0]
    try:
        await asyncio.gather(*(b.connect() for b in bots))
        for bot in bots[1:]:
            await bot.ready()
        await host.wait_until(lambda: everyone_ready(host.lobby, players))

        started = None
        if start_over_http:
            body = {"lobby_id": lobby_id}
            started = await api.post("/api/start_game/", body, token=host.token)
        else:
            await host.start()
            await host.wait_until(lambda: host.game is not None or bool(host.errors))
            if host.game is None:
                raise BotError(f"START refused: {host.errors[-1]}")

        results = await asyncio.gather(*(b.finished() for b in bots))
    finally:
        await asyncio.gather(*(b.close() for b in bots))
    return GameRun(lobby_id, results[0]["game_id"], bots, results[0], started)


async def run_local_game(
    api: Api,
    names: Sequence[str] = ("player-1", "player-2"),
    points: int = 3,
    *,
    skill: float | Mapping[int, float] = DEFAULT_SKILL,
    seed: int | None = None,
    listener: Listener | None = None,
) -> GameRun:
    """Start a local game and drive every seat from its one socket."""
    body: dict[str, Any] = {f"player-{i + 1}": n for i, n in enumerate(names)}
    body["points_to_win"] = points
    started = await api.post("/api/start_game/", body)
    bot = Bot(
        "local",
        started["token"],
        started["ws_url"],
        ssl_context=api.ssl,
        skill=skill,
        seed=seed,
        listener=listener,
    )
    try:
        await bot.connect()
        result = await bot.finished()
    finally:
        await bot.close()
    return GameRun(None, started["game_id"], [bot], result, started)


# Command line ----------------------------------------------------------------


class ScorePrinter:
    """Prints one line per point and per round end, from one socket's view."""

    def __init__(self, out: Any = sys.stdout) -> None:
        self.out = out

    def __call__(self, bot: Bot, kind: int, message: list[Any]) -> None:
        if bot.game is None:
            return
        names = [p["name"] for p in bot.game["players"]]
        payload = message[1] if len(message) > 1 else None
        if kind == protocol.ROUND_START:
            left, right = names[payload["left"]], names[payload["right"]]
            self._say(f"round {payload['round'] + 1}: {left} vs {right}")
        elif kind == protocol.POINT:
            assert bot.round is not None
            left, right = names[bot.round["left"]], names[bot.round["right"]]
            a, b = payload["score"]
            scorer = names[payload["seat"]]
            self._say(f"  point to {scorer}: {left} {a} - {b} {right}")
        elif kind == protocol.ROUND_END:
            left, right = names[payload["left"]], names[payload["right"]]
            winner = names[payload["winner"]]
            a, b = payload["score"]
            how = " by forfeit" if payload["forfeit"] else ""
            self._say(
                f"round {payload['round'] + 1} won by {winner}{how}: "
                f"{left} {a} - {b} {right}"
            )

    def result(self, result: Mapping[str, Any]) -> None:
        self._say(f"game {result['game_id']} {result['status']}")
        if result.get("winner_name") is not None:
            self._say(f"winner: {result['winner_name']} (seat {result['winner']})")
        for rank, s in enumerate(result.get("standings", []), 1):
            wins = f"{s['wins']} win" + ("" if s["wins"] == 1 else "s")
            self._say(
                f"  {rank}. {s['name']}: {wins}, "
                f"points {s['points_for']}-{s['points_against']}"
            )
        self._say(f"saved: {'yes' if result.get('saved') else 'no'}")

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.bot",
        description="Play one lobby game between bots and print how it goes.",
    )
    p.add_argument("--url", default="https://localhost:8443", help="(%(default)s)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate (for a self-signed one)",
    )
    p.add_argument("--players", type=int, default=2, help="2..8 (%(default)s)")
    p.add_argument("--points", type=int, default=3, help="to win a round (%(default)s)")
    p.add_argument(
        "--skill",
        type=float,
        default=DEFAULT_SKILL,
        help="chance in [0, 1] that a bot goes for a ball (%(default)s)",
    )
    p.add_argument("--seed", type=int, help="for repeatable bot decisions")
    p.add_argument(
        "--start-over-socket",
        action="store_true",
        help="the host sends START on its socket instead of POST /api/start_game/",
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds in all (%(default)s)"
    )
    args = p.parse_args(argv)
    if not 2 <= args.players <= 8:
        p.error("--players is 2..8")
    if not 1 <= args.points <= 99:
        p.error("--points is 1..99")
    if not 0.0 <= args.skill <= 1.0:
        p.error("--skill is 0..1")
    if args.timeout <= 0:
        p.error("--timeout must be positive")
    return args


async def play(args: argparse.Namespace) -> int:
    printer = ScorePrinter()
    api = Api(args.url, args.insecure)
    try:
        async with asyncio.timeout(args.timeout):
            run = await run_lobby_game(
                api,
                args.players,
                args.points,
                start_over_http=not args.start_over_socket,
                skill=args.skill,
                seed=args.seed,
                listener=printer,
            )
    except TimeoutError:
        print(f"error: no result within {args.timeout:g} s", file=sys.stderr)
        return 1
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    printer.result(run.result)
    rtts = sorted(t for b in run.bots for t in b.rtts)
    if rtts:
        median = rtts[len(rtts) // 2] * 1000
        print(f"input round trip: median {median:.1f} ms over {len(rtts)} inputs")
    if run.result["status"] != "finished":
        print(f"error: the game ended {run.result['status']}", file=sys.stderr)
        return 1
    if not run.result.get("saved"):
        print("error: the server could not save the result", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return uvloop.run(play(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
