"""The fixed demo tenant, seeded by ``acauth serve --demo`` when absent.

Its credentials are published, so a store it is seeded into is marked as the
demo's, inside the database (the mark travels with backups): ``--demo`` seeds
only a store it created (an empty one, which it marks) or marked before, and a
server without ``--demo`` refuses a marked store.
"""

from __future__ import annotations

from acauth.models import RegionUrl
from acauth.service import operators
from acauth.service.admin import AdminService

ORG_ID = "6048ce7ba15c2af2e8cec12991ec13cf"
USER = "demo"
PASSWORD = "demo-password"  # noqa: S105 - published demo credentials
USER_ID = 11655048541
ACCESS_KEY = "demo-access-key"
SECRET_KEY = "demo-secret-key"  # noqa: S105 - published demo credentials
REGIONS = ((11112, "OpenAPI计算中心"), (11126, "test中心"))
OPERATOR = "admin"
OPERATOR_PASSWORD = "demo-admin-password"  # noqa: S105 - published demo credentials
# Its argon2id hash, made ahead: seeding a demo store (every test server) hashes nothing.
OPERATOR_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$RLsPZ5EQBTho9/vjdsBsYQ"
    "$D3OvTDS4BwrVG0zybuZOhPp4S9vAYgU1Nq7nE7kyaJ0"
)


def refusal(location: str) -> str:
    """Why a server without ``--demo`` does not start on the demo's store."""
    return (
        f"{location} is a demo store (acauth serve --demo seeded it with published"
        " credentials): serve it only with --demo, or use another store"
    )


async def seed(admin: AdminService) -> bool:
    """Mark the store as the demo's and create the demo tenant unless its user exists,
    and the demo operator unless it exists.

    True if the tenant was created. Raises :class:`~acauth.errors.ConfigError` on a
    store holding data made without ``--demo``.
    """
    await admin.claim_for_demo()
    await _seed_operator(admin)
    if await admin.find_user(USER) is not None:
        return False
    if await admin.find_org(ORG_ID) is None:
        await admin.add_org(ORG_ID, "demo org")
    await admin.add_user(
        USER,
        PASSWORD,
        user_id=USER_ID,
        status="Normal",
        role="1",
        full_name="Demo User",
        email="demo@example.com",
        computer_center="OpenAPI计算中心",
        country="CN",
        address="",
    )
    for cluster_id, name in REGIONS:
        if await admin.find_region(cluster_id) is None:
            await admin.add_region(cluster_id, name, f"{name} (demo region)")
            host = f"https://{cluster_id}.demo.invalid"
            for kind, port in (("hpc", 65051), ("efile", 65052), ("ai", 65053)):
                await admin.set_urls(cluster_id, kind, [RegionUrl(kind, f"{host}:{port}")])
        await admin.grant(USER, cluster_id, USER, f"/public/home/{USER}")
    await admin.create_key(USER, ORG_ID, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    return True


async def _seed_operator(admin: AdminService) -> None:
    # A published password, its hash made ahead (the length policy is for yours).
    if await admin.store.operators.get(OPERATOR) is None:
        await operators.add_hashed(
            admin.store, admin.clock, OPERATOR, OPERATOR_HASH, actor=admin.actor
        )
