// xrpl.js autofill against a hub: node tests/js/autofill.mjs ws://127.0.0.1:PORT [prefilled]
// Prints what xrpl.js learnt from server_info and the Payment it autofilled. With
// "prefilled" the Payment already has Sequence, Fee and LastLedgerSequence, so autofill
// asks nothing more and only decides NetworkID from server_info.
import { Client } from "xrpl";

const [url, mode] = process.argv.slice(2);
const prefilled = mode === "prefilled" ? { Sequence: 3, Fee: "12", LastLedgerSequence: 99 } : {};
const client = new Client(url, { timeout: 10000, connectionTimeout: 10000 });
await client.connect();
const summary = { networkID: client.networkID ?? null, buildVersion: client.buildVersion ?? null };
summary.tx = await client.autofill({
  TransactionType: "Payment",
  Account: "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh",
  Destination: "rPT1Sjq2YGrBMTttX4GZHjKu9dyfzbpAYe",
  Amount: "1000",
  ...prefilled,
});
await client.disconnect();
console.log(JSON.stringify(summary));
