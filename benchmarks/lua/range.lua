-- wrk script: one 64 KiB Range request at a random offset of a large file.
-- Usage: wrk -s range.lua URL -- <file size> [<range length>] [<seed>]
local size, length

function init(args)
  size = tonumber(args[1])
  length = tonumber(args[2] or 65536)
  math.randomseed(tonumber(args[3] or 1))
end

function request()
  local start = math.random(0, size - length)
  return wrk.format(nil, nil, {
    ["Range"] = string.format("bytes=%d-%d", start, start + length - 1),
  })
end
