// A minimal broadcast server on Node's `ws` package, as a yardstick for the hub.
//
// It does the hub's fan-out and nothing else: `subscribe` adds the connection to the
// subscriber set; `publish` ({"command": "publish", "messages": [...]}) encodes each
// message once and sends that buffer to every subscriber (ws's documented broadcast
// loop); `ping` answers {}. Replies have the hub's envelope so the same load generator
// drives both. Usage: node ws_peer.mjs [PORT]; prints "listening on ws://127.0.0.1:PORT".
import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.argv[2] ?? 0);
const subscribers = new Set();
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
  clientTracking: false,
});

function reply(ws, request, result) {
  ws.send(JSON.stringify({ id: request.id, status: 'success', type: 'response', result }));
}

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('close', () => subscribers.delete(ws));
  ws.on('message', (data) => {
    const request = JSON.parse(data);
    if (request.command === 'subscribe') {
      subscribers.add(ws);
      reply(ws, request, {});
    } else if (request.command === 'publish') {
      const messages = request.messages ?? [];
      for (const message of messages) {
        const encoded = Buffer.from(JSON.stringify(message));
        for (const client of subscribers) {
          if (client.readyState === WebSocket.OPEN) client.send(encoded, { binary: false });
        }
      }
      reply(ws, request, { published: messages.length });
    } else {
      reply(ws, request, {});
    }
  });
});

wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
