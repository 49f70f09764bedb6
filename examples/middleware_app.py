import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from acauth.middleware import RemoteVerifier, TokenMiddleware


async def jobs(request: Request) -> JSONResponse:
    claims = request.state.acauth_claims  # set by the middleware
    return JSONResponse({"user": claims.user, "cluster": claims.cluster_id})


verifier = RemoteVerifier(os.environ.get("ACAUTH_URL", "http://127.0.0.1:8000"), cache_s=5)
app = TokenMiddleware(Starlette(routes=[Route("/jobs", jobs)]), verifier)
# Or verify locally with the server's secret: LocalVerifier(os.environ["ACAUTH_SECRET"]).
# For WSGI (Flask, Django): WSGITokenMiddleware(wsgi_app, verifier).
