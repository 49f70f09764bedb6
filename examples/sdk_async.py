import asyncio
import os

from acauth import AsyncClient


async def main() -> None:
    async with AsyncClient(os.environ.get("ACAUTH_URL", "http://127.0.0.1:8000")) as client:
        entries = await client.get_tokens_with_key("demo", "demo-access-key", "demo-secret-key")
        platform = entries[-1].token
        assert platform is not None
        print(await client.verify(platform), (await client.user_info(platform)).user_name)


asyncio.run(main())
