"""The compact revocation set behaves as a set of strings."""

from __future__ import annotations

import secrets
from array import array

from hypothesis import given
from hypothesis import strategies as st

from acauth.service import revocations
from acauth.service.revocations import RevocationSet


@given(st.sets(st.text(max_size=24), max_size=200), st.lists(st.text(max_size=24), max_size=50))
def test_membership_matches_a_plain_set(members: set[str], probes: list[str]) -> None:
    rs = RevocationSet(list(members)[: len(members) // 2])
    rs.update(list(members)[len(members) // 2 :])
    assert len(rs) == len(members)
    for jti in [*members, *probes]:
        assert (jti in rs) == (jti in members)


def test_recent_additions_merge_into_the_sorted_array(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(revocations, "MERGE_AT", 10)
    ids = [secrets.token_urlsafe(16) for _ in range(95)]
    rs = RevocationSet()
    for jti in ids:
        rs.add(jti)
    assert len(rs._recent) < 10 and len(rs) == 95
    assert all(jti in rs for jti in ids)
    assert "not-revoked" not in rs


def test_from_hashes() -> None:
    ids = [secrets.token_urlsafe(16) for _ in range(1000)]
    rs = RevocationSet.from_hashes(array("q", (hash(j) for j in ids)))
    assert all(j in rs for j in ids)
    assert len(rs) == 1000 and "other" not in rs
