B=${ACAUTH_URL:-http://127.0.0.1:8000}   # acauth serve --demo --emulator
curl -s -X POST $B/_emulator/clock -d '{"advance_seconds": 86400}'
curl -s -X POST $B/_emulator/faults \
  -d '{"path": "/ac/openapi/v2/tokens/next", "count": 2, "code": "10008"}'
curl -s -X POST $B/_emulator/faults -d '{"path": "/ac/openapi/v2/user", "drop": true}'
curl -s -X DELETE $B/_emulator/faults
curl -s $B/_emulator/requests
