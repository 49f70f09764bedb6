"""Baseline (b): the typical hand-written alternative.

A FastAPI ``async def`` endpoint that decodes the token with PyJWT and looks its
jti up in a SQLite revocation table — what a team writes in an afternoon.
Environment: ``BENCH_SECRET``, ``BENCH_REVOCATIONS_DB``.
"""

from __future__ import annotations

import os
import sqlite3

import jwt
from fastapi import FastAPI, Header

SECRET = os.environ["BENCH_SECRET"]
db = sqlite3.connect(os.environ["BENCH_REVOCATIONS_DB"], check_same_thread=False)
app = FastAPI()


@app.get("/ac/openapi/v2/tokens/state")
async def state(token: str | None = Header(default=None)) -> dict[str, object]:
    if not token:
        return {"code": "10003", "msg": "missing parameter", "data": None}
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return {"code": "10008", "msg": "invalid token", "data": None}
    if int(claims["expireTime"]) <= int(__import__("time").time() * 1000):
        return {"code": "10008", "msg": "token expired", "data": None}
    row = db.execute("SELECT 1 FROM revoked WHERE jti = ?", (claims.get("jti"),)).fetchone()
    if row is not None:
        return {"code": "10008", "msg": "token revoked", "data": None}
    return {"code": "0", "msg": "success", "data": "token is valid"}
