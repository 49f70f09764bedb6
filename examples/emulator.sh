B=${ACAUTH_URL:-http://127.0.0.1:8000}   # acauth serve --demo --emulator
curl -s -X POST $B/_emulator/clock -d '{"advance_seconds": 86400}'
curl -s -X POST $B/_emulator/faults \
  -d '{"path": "/ac/openapi/v2/tokens/next", "count": 2, "code": "10008"}'
curl -s -X POST $B/_emulator/faults -d '{"path": "*", "code": "10001", "probability": 0.1, "seed": 7}'
curl -s -X POST $B/_emulator/faults -d '{"path": "/ac/openapi/v2/user", "drop": true}'
STATE=$(curl -s $B/_emulator/state)   # everything, credentials included
curl -s -X POST $B/_emulator/scenarios -d '{"do": "suspend_account", "user": "demo"}'
printf '%s' "$STATE" | curl -s -X PUT $B/_emulator/state --data-binary @-   # undone
curl -s "$B/_emulator/journal?path=/ac/openapi/v2/tokens&code=10009"
curl -s -X DELETE $B/_emulator/faults
curl -s $B/_emulator/requests
