from acauth import TokenManager


def test_my_client_survives_expiry(acauth_server):  # fixture of the acauth pytest plugin
    c = acauth_server.credentials
    # No clock= needed: the manager follows the server's clock (its Date header).
    with TokenManager(
        acauth_server.base_url, user=c.user, password=c.password, org_id=c.org_id
    ) as tokens:
        first = tokens.token()
        acauth_server.clock.advance(24 * 3600)  # a day later: expired, inside the window
        tokens.client.verify(first)  # any answer tells the manager the server's time
        assert tokens.token() != first  # renewed
        acauth_server.scenario("refuse_renewal", count=1)
        acauth_server.clock.advance(24 * 3600)
        tokens.client.verify(first)
        assert tokens.client.verify(tokens.token())  # renewal refused: logged in again
    assert acauth_server.requests()["/ac/openapi/v2/tokens"] == 2
    assert [e.code for e in acauth_server.journal("/ac/openapi/v2/tokens/next")] == ["0", "10008"]
