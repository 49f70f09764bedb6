// node --test emulator.test.mjs   (against acauth serve --demo --emulator; no dependencies)
import assert from "node:assert/strict";
import { test } from "node:test";

const B = process.env.ACAUTH_URL ?? "http://127.0.0.1:8000";
const AC = `${B}/ac/openapi/v2`;
const call = async (method, url, headers = {}, body = undefined) =>
  (await fetch(url, { method, headers, body: body && JSON.stringify(body) })).json();

test("a token expires when the emulator's clock moves, and renews", async () => {
  const login = await call("POST", `${AC}/tokens`, {
    user: "demo",
    password: "demo-password",
    orgId: "6048ce7ba15c2af2e8cec12991ec13cf",
  });
  assert.equal(login.code, "0");
  const token = login.data.find((entry) => entry.clusterId === "0").token;

  await call("POST", `${B}/_emulator/clock`, {}, { advance_seconds: 25 * 3600 });
  const expired = await call("GET", `${AC}/tokens/state`, { token });
  assert.deepEqual([expired.code, expired.msg], ["10008", "token expired"]);

  const renewed = await call("POST", `${AC}/tokens/next`, { token });
  assert.equal(renewed.code, "0");
  const state = await call("GET", `${AC}/tokens/state`, { token: renewed.data });
  assert.equal(state.data, "token is valid");

  const journal = await call("GET", `${B}/_emulator/journal?code=10008`);
  assert.deepEqual(journal.entries.map((e) => e.path), ["/ac/openapi/v2/tokens/state"]);
});
