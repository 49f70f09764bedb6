export ACAUTH_PASSWORD=demo-password   # or type it at the prompt
acauth login --server "${ACAUTH_URL:-http://127.0.0.1:8000}" --user demo \
  --org 6048ce7ba15c2af2e8cec12991ec13cf
acauth regions
acauth whoami --json
TOKEN=$(acauth token show --cluster 11112)
acauth token verify "$TOKEN"
acauth token renew > /dev/null
