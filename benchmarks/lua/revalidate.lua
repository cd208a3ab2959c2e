-- wrk script: revalidation of a cached copy with If-None-Match (304 expected).
-- Usage: wrk -s revalidate.lua URL -- '<ETag as sent by the server>'
local req

function init(args)
  req = wrk.format(nil, nil, {["If-None-Match"] = args[1]})
end

function request()
  return req
end
