// Drive the hub with xrpl.js: node tests/js/client.mjs ws://127.0.0.1:PORT
// Prints one JSON object summarising what xrpl.js made of each reply, then exits.
import { Client } from "xrpl";

const url = process.argv[2];
if (!url) {
  console.error("usage: node client.mjs ws://HOST:PORT");
  process.exit(2);
}

const client = new Client(url, { timeout: 10000, connectionTimeout: 10000 });
const summary = {};
try {
  await client.connect();
  summary.connected = client.isConnected();
  summary.server_info = await client.request({ command: "server_info" });
  summary.ping = await client.request({ command: "ping" });
  summary.version = await client.request({ command: "version", id: "v-1" });
  try {
    await client.request({
      command: "no_such_method",
      account: "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh",
    });
    summary.error = null;
  } catch (err) {
    summary.error = { name: err.name, message: err.message, data: err.data ?? null };
  }
  summary.after_error = await client.request({ command: "ping" });
} finally {
  await client.disconnect();
}
summary.disconnected = !client.isConnected();
console.log(JSON.stringify(summary));
