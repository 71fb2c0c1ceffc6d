"""The HTTP API: routes, body checks, and the mapping to the lobby service.

Every answer is JSON. Errors have the shape ``{"error": {"code", "message"}}``
with a code from ``server.errors``; README.md lists the endpoints.
Paths are matched with or without their trailing slash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from ..accounts import avatars
from ..errors import ClientError
from ..store import PlayerRecord
from . import auth
from .auth import bearer_token
from .http import Request, Response, error_response, json_response
from .metrics import CONTENT_TYPE
from .static import StaticFiles

if TYPE_CHECKING:
    from .context import Context

logger = logging.getLogger(__name__)

Handler = Callable[[Request, list[str]], Awaitable[Response]]


def parse_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, or ClientError. Bodies must declare JSON."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise ClientError("unsupported_media_type", "send application/json")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ClientError("malformed_json") from exc
    if not isinstance(body, dict):
        raise ClientError("invalid_body")
    return body


def text_field(body: dict[str, Any], name: str) -> str:
    if name not in body:
        raise ClientError("missing_field", name)
    value = body[name]
    if not isinstance(value, str):
        raise ClientError("invalid_field", f"{name} must be a string")
    return value


def int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise ClientError("invalid_field", f"{name} must be an integer")
    return value


def optional_text(body: dict[str, Any], name: str) -> str | None:
    return text_field(body, name) if body.get(name) is not None else None


class Router:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.started = time.time()
        # path prefix -> method -> handler; a prefix ending in "/" takes one
        # path segment after it (an ID).
        self.exact: dict[str, dict[str, Handler]] = {
            "/api/create_lobby": {"POST": self.create_lobby},
            "/api/join_lobby": {"POST": self.join_lobby},
            "/api/start_game": {"POST": self.start_game},
            "/api/close_lobby": {"POST": self.close_lobby},
            "/api/leave_lobby": {"POST": self.leave_lobby},
            "/api/register": {"POST": self.register},
            "/api/login": {"POST": self.login},
            "/api/logout": {"POST": self.logout},
            "/api/me": {"GET": self.me},
            "/api/me/avatar": {"PUT": self.upload_avatar, "POST": self.upload_avatar},
            "/api/csrf": {"GET": self.csrf},
            "/api/health": {"GET": self.health},
            "/metrics": {"GET": self.metrics},
        }
        self.with_id: dict[str, dict[str, Handler]] = {
            "/api/lobby": {"GET": self.get_lobby},
            "/api/game": {"GET": self.get_game},
            "/api/players": {"GET": self.get_player},
        }
        # Like with_id, then one fixed last segment: /api/players/<id>/avatar.
        self.with_id_then: dict[tuple[str, str], dict[str, Handler]] = {
            ("/api/players", "avatar"): {"GET": self.get_avatar},
        }
        # The browser client: "/" and one prefix per folder of its files.
        self.static = StaticFiles()
        self.exact["/"] = {"GET": self.static_file}
        for folder in self.static.folders():
            self.with_id[folder] = {"GET": self.static_file}

    async def handle(self, request: Request) -> Response:
        try:
            handler, args = self._route(request)
            if handler == self.upload_avatar:
                auth.check_request(request, tuple(avatars.FORMATS))
            else:
                auth.check_request(request, ("application/json",))
            return await handler(request, args)
        except ClientError as exc:
            errors = self.context.metrics.errors
            errors[exc.code] = errors.get(exc.code, 0) + 1
            return error_response(exc)
        except Exception:
            logger.exception(
                "%s %s %s failed", request.peer, request.method, request.path
            )
            return error_response(ClientError("internal_error"))

    def _route(self, request: Request) -> tuple[Handler, list[str]]:
        path = request.path.rstrip("/") or "/"
        methods = self.exact.get(path)
        args: list[str] = []
        if methods is None:
            prefix, _, last = path.rpartition("/")
            methods = self.with_id.get(prefix)
            # The ID segment as the client meant it: "%20" is a space.
            last = unquote(last, errors="replace")
            args = [last]
        if methods is None:
            rest, _, middle = prefix.rpartition("/")
            methods = self.with_id_then.get((rest, last))
            args = [middle]
        if methods is None:
            if path == "/ws" or path.startswith("/ws/"):
                raise ClientError("upgrade_required")
            raise ClientError("not_found")
        method = "GET" if request.method == "HEAD" else request.method
        handler = methods.get(method)
        if handler is None:
            allowed = [*methods, "HEAD"] if "GET" in methods else list(methods)
            raise ClientError("method_not_allowed", "allowed: " + ", ".join(allowed))
        return handler, args

    # Endpoints ---------------------------------------------------------------

    async def _user(self, request: Request) -> PlayerRecord | None:
        """The logged-in user the request's session opens, if any."""
        token, _ = auth.session_token(request)
        if token is None:
            return None
        return await self.context.accounts.authenticate(token)

    async def _required_user(self, request: Request) -> PlayerRecord:
        user = await self._user(request)
        if user is None:
            raise ClientError("login_required")
        return user

    async def create_lobby(self, request: Request, _: list[str]) -> Response:
        body = parse_json(request)
        user = await self._user(request)
        result = await self.context.service.create_lobby(
            None if user else optional_text(body, "host"),
            int_field(body, "points_to_win"),
            int_field(body, "max_players"),
            user,
            request.address,
        )
        return json_response(201, result)

    async def join_lobby(self, request: Request, _: list[str]) -> Response:
        body = parse_json(request)
        lobby_id = text_field(body, "lobby_id")
        user = await self._user(request)
        guest_name = None if user else optional_text(body, "guest_name")
        result = await self.context.service.join_lobby(lobby_id, guest_name, user)
        return json_response(200, result)

    async def start_game(self, request: Request, _: list[str]) -> Response:
        body = parse_json(request)
        service = self.context.service
        if "lobby_id" in body:
            lobby_id = text_field(body, "lobby_id")
            user = await self._user(request)
            token = bearer_token(request)
            result = await service.start_remote(token, lobby_id, user)
            return json_response(201, result)
        if _names_a_key_twice(request.body):
            # orjson keeps the last of two equal keys: a player would vanish.
            raise ClientError("invalid_field", "a field is given twice")
        names = local_players(body)
        result = await service.start_local(
            names, int_field(body, "points_to_win"), request.address
        )
        return json_response(201, result)

    async def close_lobby(self, request: Request, _: list[str]) -> Response:
        return await self._as_member(request, self.context.service.close_lobby)

    async def leave_lobby(self, request: Request, _: list[str]) -> Response:
        return await self._as_member(request, self.context.service.leave_lobby)

    async def _as_member(
        self,
        request: Request,
        action: Callable[
            [str | None, str, PlayerRecord | None], Awaitable[dict[str, Any]]
        ],
    ) -> Response:
        """Run a lobby action for the seat a bearer token or session holds."""
        body = parse_json(request)
        lobby_id = text_field(body, "lobby_id")
        user = await self._user(request)
        result = await action(bearer_token(request), lobby_id, user)
        return json_response(200, result)

    # Accounts ----------------------------------------------------------------

    async def register(self, request: Request, _: list[str]) -> Response:
        body = parse_json(request)
        result = await self.context.accounts.register(
            text_field(body, "username"), text_field(body, "password"), request.address
        )
        return json_response(201, result)

    async def login(self, request: Request, _: list[str]) -> Response:
        body = parse_json(request)
        bearer = body.get("bearer", False)
        if not isinstance(bearer, bool):
            raise ClientError("invalid_field", "bearer must be true or false")
        token, session, player = await self.context.accounts.login(
            text_field(body, "username"),
            text_field(body, "password"),
            request.address,
        )
        result: dict[str, Any] = {
            "message": f"Logged in as {player.display_name}.",
            "player_id": player.id,
            "username": player.display_name,
            "expires_at": session.expires_at,
        }
        if bearer:
            result["token"] = token
            return json_response(200, result)
        # A browser: the session goes in an HttpOnly cookie, out of scripts'
        # reach, and a fresh CSRF token with it.
        config = self.context.config
        csrf = auth.new_csrf_token()
        result["csrf_token"] = csrf
        response = json_response(200, result)
        ttl = int(config.session_ttl)
        response.headers += [
            auth.set_cookie(config, auth.SESSION_COOKIE, token, ttl, http_only=True),
            auth.set_cookie(
                config, auth.CSRF_COOKIE, csrf, auth.CSRF_TTL, http_only=False
            ),
        ]
        return response

    async def logout(self, request: Request, _: list[str]) -> Response:
        token, by_cookie = auth.session_token(request)
        if token is None:
            raise ClientError("login_required")
        await self.context.accounts.logout(token)
        response = json_response(200, {"message": "Logged out."})
        if by_cookie:
            config = self.context.config
            response.headers.append(
                auth.set_cookie(config, auth.SESSION_COOKIE, "", 0, http_only=True)
            )
        return response

    async def me(self, request: Request, _: list[str]) -> Response:
        user = await self._required_user(request)
        return json_response(200, await self.context.accounts.profile(user.id))

    async def csrf(self, request: Request, _: list[str]) -> Response:
        token = auth.csrf_token_of(request) or auth.new_csrf_token()
        response = json_response(200, {"csrf_token": token})
        config = self.context.config
        response.headers.append(
            auth.set_cookie(
                config, auth.CSRF_COOKIE, token, auth.CSRF_TTL, http_only=False
            )
        )
        return response

    async def get_player(self, _: Request, args: list[str]) -> Response:
        return json_response(200, await self.context.accounts.profile(args[0]))

    async def upload_avatar(self, request: Request, _: list[str]) -> Response:
        user = await self._required_user(request)
        media_type = request.headers.get("content-type", "").split(";", 1)[0]
        png = await asyncio.to_thread(
            avatars.reencode,
            request.body,
            media_type.strip().lower(),
            self.context.config.max_avatar_side,
        )
        await self.context.accounts.store.set_avatar(user.id, png, time.time())
        url = f"/api/players/{user.id}/avatar/"
        return json_response(200, {"message": "Avatar saved.", "avatar_url": url})

    async def get_avatar(self, _: Request, args: list[str]) -> Response:
        accounts = self.context.accounts
        profile = await accounts.profile(args[0])  # unknown_player if none
        player_id = profile["player_id"]
        png = (
            await accounts.store.get_avatar(player_id)
            if profile["has_avatar"]
            else None
        )
        if png is None:
            png = await asyncio.to_thread(avatars.default_avatar, player_id)
        return Response(200, png, content_type="image/png")

    async def get_lobby(self, _: Request, args: list[str]) -> Response:
        return json_response(200, await self.context.service.lobby_view(args[0]))

    async def get_game(self, _: Request, args: list[str]) -> Response:
        return json_response(200, await self.context.service.game_view(args[0]))

    async def static_file(self, request: Request, _: list[str]) -> Response:
        return self.static.answer(request)

    async def metrics(self, _: Request, __: list[str]) -> Response:
        exporter = self.context.exporter
        if exporter is None:
            raise ClientError("not_found")
        return Response(200, exporter.render(), content_type=CONTENT_TYPE)

    async def health(self, _: Request, __: list[str]) -> Response:
        service = self.context.service
        scheduler = service.scheduler
        metrics = self.context.metrics
        return json_response(
            200,
            {
                "status": "ok",
                "uptime": round(time.time() - self.started, 3),
                "tick_rate": self.context.config.tick_rate,
                "tick": scheduler.tick,
                "skipped_ticks": scheduler.skipped,
                "open_lobbies": len(service.lobbies),
                "unopened_local_games": service.unopened_local_games,
                "running_games": len(scheduler.rooms),
                "connections": metrics.connections,
                "sockets": metrics.sockets,
            },
        )


def _names_a_key_twice(raw: bytes) -> bool:
    """Whether the JSON in ``raw``, already parsed once, repeats a key."""
    repeated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        repeated = repeated or len({k for k, _ in items}) != len(items)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:  # what orjson took and json does not, such as huge ints
        return False
    return repeated


def local_players(body: dict[str, Any]) -> list[str]:
    """Names from ``{"player-1": ..., "player-2": ...}``, in number order.

    The numbers must run 1..N without a gap; other keys are refused, except
    ``points_to_win``.
    """
    numbered: dict[int, str] = {}
    for key, value in body.items():
        if key == "points_to_win":
            continue
        number = key.removeprefix("player-")
        # ASCII digits only: str.isdigit also takes "²" and fullwidth digits,
        # which int() refuses or reads as a number the client did not write.
        plain = number.isascii() and number.isdigit() and len(number) <= 3
        if number == key or not plain or number.startswith("0"):
            # The detail is ours: a client's key is not echoed back.
            raise ClientError("invalid_field", "fields are player-1 .. player-N")
        if not isinstance(value, str):
            raise ClientError("invalid_field", f"{key} must be a string")
        numbered[int(number)] = value
    if not numbered:
        raise ClientError("missing_field", "lobby_id, or player-1 and player-2")
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ClientError("invalid_field", "players are numbered 1..N with no gap")
    return [numbered[n] for n in range(1, len(numbered) + 1)]
