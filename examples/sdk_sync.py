import os

from acauth import Client

with Client(os.environ.get("ACAUTH_URL", "http://127.0.0.1:8000")) as client:
    entries = client.get_tokens("demo", "demo-password", "6048ce7ba15c2af2e8cec12991ec13cf")
    for entry in entries:
        print(entry.cluster_id, entry.cluster_name, entry.expires_at)
    platform = next(e.token for e in entries if e.is_platform)
    region = next(e.token for e in entries if e.cluster_id == "11112")
    assert platform and region and client.verify(platform)
    print(client.user_info(platform).account_status)
    center = client.center(region)
    print(center.name, center.first_enabled("hpc"), center.home_path)
    platform = client.renew(platform)
