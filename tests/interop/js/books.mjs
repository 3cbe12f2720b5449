// Order books through xrpl.js: node tests/js/books.mjs ws://127.0.0.1:PORT REQUEST.json
// REQUEST.json: {"books": [...], "publish": [...] (optional), "ledgers": N}
// Subscribes to the books (and ledger) with client.request, publishes the given messages
// (admin), and prints one JSON summary — the subscribe reply and every transaction event
// — once N ledgerClosed events have arrived.
import { readFileSync } from "node:fs";
import { Client } from "xrpl";

const [url, path] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(path, "utf8"));
const client = new Client(url, { timeout: 10000, connectionTimeout: 10000 });
const summary = { transactions: [] };
let ledgers = 0;
const done = new Promise((resolve) => {
  client.on("ledgerClosed", () => {
    ledgers += 1;
    if (ledgers >= (plan.ledgers ?? 1)) resolve();
  });
});
client.on("transaction", (tx) => {
  summary.transactions.push({
    hash: tx.hash,
    ctid: tx.ctid ?? null,
    TakerGets: tx.tx_json?.TakerGets ?? null,
    TakerPays: tx.tx_json?.TakerPays ?? null,
    meta: tx.meta,
  });
});
await client.connect();
summary.subscribe = await client.request({ command: "subscribe", books: plan.books });
await client.request({ command: "subscribe", streams: ["ledger"] });
if (plan.publish) {
  summary.published = await client.request({ command: "publish", messages: plan.publish });
}
const timer = setTimeout(() => {
  console.error("timed out waiting for ledgers");
  process.exit(3);
}, 30000);
await done;
clearTimeout(timer);
await client.disconnect();
console.log(JSON.stringify(summary));
