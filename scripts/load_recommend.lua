-- wrk script: POST /v1/recommend for random users 0..942 (the NCF ML-100K ids), top-10.
-- wrk -t1 -c8 -d20s -s scripts/load_recommend.lua --latency http://127.0.0.1:8080
math.randomseed(7)
request = function()
  local body = string.format('{"user": %d, "k": 10}', math.random(0, 942))
  return wrk.format("POST", "/v1/recommend", { ["Content-Type"] = "application/json" }, body)
end
