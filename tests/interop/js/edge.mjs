// xrpl.js over wss:// with its default permessage-deflate offer:
//   node tests/js/edge.mjs wss://127.0.0.1:PORT TOKEN COUNT
// Subscribes to transactions, waits for COUNT of them, asks the hub (as admin, by
// bearer token) how it sees this connection, prints one JSON summary and exits.
import { Client } from "xrpl";

const [url, token, count] = process.argv.slice(2);
const client = new Client(url, {
  timeout: 10000,
  connectionTimeout: 10000,
  headers: { Authorization: `Bearer ${token}` },
});
const summary = { transactions: [] };
try {
  await client.connect();
  const done = new Promise((resolve) => {
    client.on("transaction", (tx) => {
      summary.transactions.push({ hash: tx.hash, ledger_index: tx.ledger_index });
      if (summary.transactions.length >= Number(count)) resolve();
    });
  });
  summary.subscribe = await client.request({ command: "subscribe", streams: ["transactions"] });
  await done;
  summary.connections = await client.request({ command: "connections" });
} finally {
  await client.disconnect();
}
console.log(JSON.stringify(summary));
