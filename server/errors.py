"""The project's exception tree and the error codes clients see.

Every error that reaches a client carries a stable machine code from ``CODES``
and a fixed human message. Exception text from our own code never goes to a
client: it may hold paths, SQL or other details a peer has no business seeing.

    GameServerError              root of everything we raise on purpose
    +-- ClientError              the peer did something wrong; carries a code
    +-- InternalError            our own bug or a broken dependency

``protocol.md`` lists the same codes; ``tests/test_protocol_doc.py`` keeps
the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    message: str


def _table(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.code: c for c in codes}


CODES: dict[str, ErrorCode] = _table(
    # Request shape (HTTP).
    ErrorCode("malformed_json", 400, "The request body is not valid JSON."),
    ErrorCode("invalid_body", 400, "The request body must be a JSON object."),
    ErrorCode("missing_field", 400, "A required field is missing."),
    ErrorCode("invalid_field", 400, "A field has the wrong type or value."),
    ErrorCode("bad_request", 400, "The request could not be parsed."),
    ErrorCode("bad_handshake", 400, "The WebSocket handshake request is invalid."),
    ErrorCode("upgrade_required", 426, "This path needs a WebSocket upgrade."),
    ErrorCode("unauthorized", 401, "A valid token is required."),
    ErrorCode("forbidden", 403, "This token may not do that."),
    ErrorCode("not_found", 404, "No such endpoint."),
    ErrorCode("method_not_allowed", 405, "This endpoint does not accept that method."),
    ErrorCode("request_timeout", 408, "The request was not received in time."),
    ErrorCode("too_many_connections", 429, "Too many connections from your address."),
    ErrorCode("body_too_large", 413, "The request body is too large."),
    ErrorCode("headers_too_large", 431, "The request headers are too large."),
    ErrorCode("unsupported_media_type", 415, "The request body has the wrong type."),
    # Accounts, sessions and cross-site checks.
    ErrorCode("login_required", 401, "Log in first."),
    ErrorCode("invalid_credentials", 401, "The username or password is wrong."),
    ErrorCode("username_taken", 409, "That username is taken."),
    ErrorCode("too_many_attempts", 429, "Too many failed logins."),
    ErrorCode(
        "too_many_registrations", 429, "Too many registrations from your address."
    ),
    ErrorCode(
        "csrf_failed",
        403,
        "CSRF check failed: send the csrftoken cookie's value in X-CSRFToken.",
    ),
    ErrorCode(
        "origin_not_allowed",
        403,
        "WebSocket connections from this origin are not allowed.",
    ),
    ErrorCode("already_joined", 409, "You already hold a seat in this lobby."),
    ErrorCode("unknown_player", 404, "No player has that ID."),
    ErrorCode("invalid_image", 400, "The body is not a PNG or JPEG image we can read."),
    ErrorCode("image_too_large", 413, "The image has too many pixels."),
    # Lobbies and games.
    ErrorCode("unknown_lobby", 404, "No lobby has that ID."),
    ErrorCode("unknown_game", 404, "No game has that ID."),
    ErrorCode("lobby_full", 409, "The lobby has no free seat."),
    ErrorCode("lobby_started", 409, "The lobby's game has already started."),
    ErrorCode("lobby_closed", 410, "The lobby has closed."),
    ErrorCode("not_ready", 409, "Every player must be connected and ready."),
    ErrorCode("too_few_players", 409, "A game needs at least two players."),
    ErrorCode("server_busy", 503, "The server is at its limit; try again later."),
    ErrorCode("shutting_down", 503, "The server is shutting down; try again shortly."),
    ErrorCode(
        "too_many_lobbies",
        429,
        "Your address holds too many lobbies; close or finish one first.",
    ),
    # WebSocket frames.
    ErrorCode("bad_frame", 400, "The frame is not a valid message."),
    ErrorCode("unknown_type", 400, "Unknown message type."),
    ErrorCode("not_authenticated", 401, "Send hello with your token first."),
    ErrorCode("invalid_token", 401, "The token is not valid."),
    ErrorCode("not_in_game", 409, "You have no paddle in the current round."),
    ErrorCode(
        "seat_forfeited", 410, "Your seat was forfeited: you were away too long."
    ),
    ErrorCode("not_host", 403, "Only the lobby's host may do that."),
    ErrorCode("game_error", 500, "The game stopped because of a server error."),
    ErrorCode("internal_error", 500, "Internal server error."),
)


class GameServerError(Exception):
    """Root of every exception the server raises on purpose."""


class ClientError(GameServerError):
    """The peer sent something we refuse; ``code`` says what, for the client.

    ``detail`` is an optional short, fixed text naming the offending field. It
    is written by our code, never copied from the request. ``retry_after``
    says when the same request may succeed, for the codes that have a when.
    """

    def __init__(
        self, code: str, detail: str | None = None, *, retry_after: int | None = None
    ) -> None:
        self.error = CODES[code]
        self.detail = detail
        self.retry_after = retry_after  # seconds, sent as Retry-After over HTTP
        super().__init__(f"{code}: {detail}" if detail else code)

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status

    @property
    def message(self) -> str:
        if self.detail:
            return f"{self.error.message} ({self.detail})"
        return self.error.message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InternalError(GameServerError):
    """Our own bug or a dependency that failed; reported as ``internal_error``."""
