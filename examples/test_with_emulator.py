from acauth import TokenManager


def test_my_client_survives_expiry(acauth_server):  # fixture of the acauth pytest plugin
    c = acauth_server.credentials
    clock = lambda: acauth_server.clock.now_ms() / 1000  # noqa: E731 - follow the server's clock
    with TokenManager(
        acauth_server.base_url, user=c.user, password=c.password, org_id=c.org_id, clock=clock
    ) as tokens:
        first = tokens.token()
        acauth_server.clock.advance(24 * 3600)  # a day later: expired, inside the window
        assert tokens.token() != first
        acauth_server.faults.add_fault("/ac/openapi/v2/tokens/next", 3, code="10008")
        acauth_server.clock.advance(24 * 3600)
        assert tokens.client.verify(tokens.token())  # renewal refused: logged in again
    assert acauth_server.requests()["/ac/openapi/v2/tokens"] == 2
