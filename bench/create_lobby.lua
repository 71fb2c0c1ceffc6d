-- wrk script: POST /api/create_lobby/ as fast as the server answers.
-- Counts the 201 answers so they can be checked against the lobbies table:
-- every lobby the server said it created must be in the database.
--   wrk -t1 -c64 -d10s -s bench/create_lobby.lua http://127.0.0.1:PORT/api/create_lobby/

wrk.method = "POST"
wrk.path = "/api/create_lobby/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"host": "wrk", "points_to_win": 5, "max_players": 2}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  created = 0
  refused = 0
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local total_created, total_refused = 0, 0
  for _, thread in ipairs(threads) do
    total_created = total_created + thread:get("created")
    total_refused = total_refused + thread:get("refused")
  end
  io.write(string.format("created (201): %d, refused: %d\n", total_created, total_refused))
end
