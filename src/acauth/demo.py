"""The fixed demo tenant, seeded by ``acauth serve --demo`` when absent."""

from __future__ import annotations

from acauth.models import RegionUrl
from acauth.service.admin import AdminService

ORG_ID = "6048ce7ba15c2af2e8cec12991ec13cf"
USER = "demo"
PASSWORD = "demo-password"  # noqa: S105 - published demo credentials
USER_ID = 11655048541
ACCESS_KEY = "demo-access-key"
SECRET_KEY = "demo-secret-key"  # noqa: S105 - published demo credentials
REGIONS = ((11112, "OpenAPI计算中心"), (11126, "test中心"))


async def seed(admin: AdminService) -> bool:
    """Create the demo tenant unless its user exists; True if it was created."""
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
