// ocpp-rpc's central system for the load benchmark: BootNotification, Heartbeat, MeterValues
// and StatusNotification for OCPP 1.6 and 2.0.1, and the transactions of
// `charger-sim --load --load-mode tx|tx-open` (1.6 StartTransaction answered with a new
// transactionId, StopTransaction; 2.0.1 TransactionEvent), in strict mode (schema validation on).
// Usage: node rpc_central.js PORT   (run with NODE_PATH pointing at interop/node/node_modules)
"use strict";
const { RPCServer } = require("ocpp-rpc");

const port = Number(process.argv[2]);
const server = new RPCServer({ protocols: ["ocpp1.6", "ocpp2.0.1"], strictMode: true, pingIntervalMs: 0 });
const now = () => new Date().toISOString();
// 1.6 transaction ids are the central system's: it gives them in StartTransaction.conf (OCPP 1.6).
let nextTransactionId = 1;
server.on("client", (client) => {
  client.handle("BootNotification", () => ({ status: "Accepted", interval: 300, currentTime: now() }));
  client.handle("Heartbeat", () => ({ currentTime: now() }));
  client.handle("MeterValues", () => ({}));
  client.handle("StatusNotification", () => ({}));
  client.handle("StartTransaction", () => ({ idTagInfo: { status: "Accepted" }, transactionId: nextTransactionId++ }));
  client.handle("StopTransaction", () => ({}));
  client.handle("TransactionEvent", () => ({}));
  client.on("error", () => {});
});
server.listen(port, "127.0.0.1", { backlog: 4096 }).then(() => console.log("listening"));
