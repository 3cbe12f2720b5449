// Subscribe with xrpl.js and collect the stream events it emits:
//   node tests/js/streams.mjs ws://127.0.0.1:PORT LEDGERS
// Prints one JSON summary once LEDGERS ledgerClosed events have arrived.
import { Client } from "xrpl";

const [url, wanted = "3"] = process.argv.slice(2);
const client = new Client(url, { timeout: 10000, connectionTimeout: 10000 });
const summary = { ledgers: [], transactions: [], validations: 0 };
const done = new Promise((resolve) => {
  client.on("ledgerClosed", (ledger) => {
    summary.ledgers.push({ index: ledger.ledger_index, txn_count: ledger.txn_count });
    if (summary.ledgers.length >= Number(wanted)) resolve();
  });
});
client.on("transaction", (tx) => {
  summary.transactions.push({
    ledger_index: tx.ledger_index,
    hash: tx.hash,
    type: tx.tx_json?.TransactionType ?? null,
    validated: tx.validated,
  });
});
client.on("validationReceived", () => {
  summary.validations += 1;
});
await client.connect();
summary.subscribe = await client.request({
  command: "subscribe",
  streams: ["ledger", "transactions", "validations"],
});
const timer = setTimeout(() => {
  console.error("timed out waiting for ledgers");
  process.exit(3);
}, 20000);
await done;
clearTimeout(timer);
await client.disconnect();
console.log(JSON.stringify(summary));
