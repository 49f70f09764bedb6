import os

import httpx

from acauth import TokenManager
from acauth.errors import AuthError

url = os.environ.get("ACAUTH_URL", "http://127.0.0.1:8000")
with TokenManager(
    url,
    user="demo",
    password="demo-password",
    org_id="6048ce7ba15c2af2e8cec12991ec13cf",
    margin_s=60,
) as tokens:
    # A valid token, renewed 60 s before expiry, re-obtained by logging in when needed.
    print(tokens.token("11112")[:20], "...")
    # As httpx auth: sends the `token` header, and on a 10008 renews and retries once.
    with httpx.Client(base_url=url, auth=tokens.auth("0")) as http:
        print(http.get("/ac/openapi/v2/user").json()["data"]["userName"])
    try:
        tokens.client.center(tokens.token("0"))
    except AuthError as err:  # the platform token is refused by region endpoints
        print(err.code, err.msg)
