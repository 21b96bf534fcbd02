-- bench/orient.sh: wrk script for GET /orientation over a fixed list of query points.
--
--   [ORIENT_WRK_TIMING=1] wrk ... -s wrk.lua URL -- POINTS_LUA NEED_ENC RADIUS_KM LIMIT [AUTHZ]
--
-- POINTS_LUA: a file returning { {"lat","lon"}, ... } (written by orient.py load).
-- AUTHZ: the Authorization header of every request ("Bearer ror_…"), if given.
-- Without ORIENT_WRK_TIMING: requests only (the req/s run). With ORIENT_WRK_TIMING=1: also
-- collects the `Server-Timing: orient;dur=<ms>` value of every response and prints, from done(),
--   server-timing count=N p50=MS p99=MS missing=N bad_status=N
-- Each wrk thread has its own Lua state: it cycles through the points from its own offset and
-- keeps its own durations; done() runs in the main state and gathers them via thread:get().

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("tid", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

local points, prefix, suffix, idx
durations = {}
missing = 0
bad_status = 0

function init(args)
    points = dofile(args[1])
    prefix = "/orientation?need=" .. args[2] .. "&lat="
    suffix = "&radius=" .. args[3] .. "&limit=" .. args[4] .. "&widen=false"
    if args[5] and args[5] ~= "" then
        wrk.headers["Authorization"] = args[5]
    end
    -- Spread the threads over the list so they do not ask the same point at the same time.
    idx = (tid * 7919) % #points
end

function request()
    idx = idx % #points + 1
    local p = points[idx]
    return wrk.format("GET", prefix .. p[1] .. "&lon=" .. p[2] .. suffix)
end

local function server_timing(headers)
    local v = headers["Server-Timing"] or headers["server-timing"]
    if v == nil then
        for k, val in pairs(headers) do
            if string.lower(k) == "server-timing" then
                v = val
                break
            end
        end
    end
    return v and tonumber(string.match(v, "orient;[^,]*dur=([%d%.]+)"))
end

local function on_response(status, headers, body)
    if status ~= 200 then
        bad_status = bad_status + 1
        return
    end
    local d = server_timing(headers)
    if d then
        durations[#durations + 1] = d
    else
        missing = missing + 1
    end
end

function done(summary, latency, requests)
    local all = {}
    local miss, bad = 0, 0
    for _, t in ipairs(threads) do
        local d = t:get("durations")
        if d then
            for _, v in ipairs(d) do all[#all + 1] = v end
        end
        miss = miss + (t:get("missing") or 0)
        bad = bad + (t:get("bad_status") or 0)
    end
    if #all == 0 and miss == 0 and bad == 0 then
        return -- plain run
    end
    table.sort(all)
    local function pct(p)
        if #all == 0 then return 0 / 0 end
        return all[math.max(1, math.ceil(p / 100 * #all))]
    end
    io.write(string.format(
        "server-timing count=%d p50=%.3f p99=%.3f max=%.3f missing=%d bad_status=%d\n",
        #all, pct(50), pct(99), all[#all] or 0 / 0, miss, bad))
end

-- wrk only parses headers and keeps bodies when a global response() exists (it looks when the
-- script is loaded): define it only for the timing run, so that the req/s run costs the client
-- (which shares the CPUs with the server) as little as possible.
if os.getenv("ORIENT_WRK_TIMING") == "1" then
    response = on_response
end
