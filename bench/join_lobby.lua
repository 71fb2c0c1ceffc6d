-- wrk script: join lobbies of 8 seats, creating a lobby whenever none has a
-- free seat. Each created lobby's id goes on a list with its 7 free seats;
-- joins take seats from the list, so about 7 of every 8 requests are joins.
-- The server keeps at most 10,000 lobbies open (Config.max_lobbies); past
-- that creates are answered 503 and counted as refused.
--   wrk -t1 -c64 -d10s -s bench/join_lobby.lua http://127.0.0.1:PORT/api/join_lobby/

local threads = {}
local headers = { ["Content-Type"] = "application/json" }
local create_body = '{"host": "wrk", "points_to_win": 5, "max_players": 8}'

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  created, joined, refused = 0, 0, 0
  open = {} -- lobby ids with a free seat, one entry per seat
end

function request()
  local lobby = table.remove(open)
  if lobby ~= nil then
    local body = '{"lobby_id": "' .. lobby .. '", "guest_name": "guest"}'
    return wrk.format("POST", "/api/join_lobby/", headers, body)
  end
  return wrk.format("POST", "/api/create_lobby/", headers, create_body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
    local lobby = string.match(body, '"lobby_id":"(%w+)"')
    for _ = 1, 7 do
      table.insert(open, lobby)
    end
  elseif status == 200 then
    joined = joined + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local c, j, r = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    j = j + thread:get("joined")
    r = r + thread:get("refused")
  end
  io.write(string.format("created (201): %d, joined (200): %d, refused: %d\n", c, j, r))
end
