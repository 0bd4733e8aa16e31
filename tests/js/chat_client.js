// One chat user on the official socket.io JS client, for the interop tests.
//
// usage: node chat_client.js URL TRANSPORTS [roundrobin]
//   TRANSPORTS: comma-separated, e.g. "polling" or "polling,websocket" (upgrade)
// Prints one JSON line: {ok, ack, echo, pings, transport} or {ok: false, error}.
// withCredentials turns on engine.io-client's Node cookie jar: that is how this client
// keeps the balancer's sticky cookie, as a browser would.
"use strict";
const { io } = require("socket.io-client");

const [url, transports = "polling", mode] = process.argv.slice(2);
const PINGS = 3;

function finish(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

const socket = io(url, {
  transports: transports.split(","),
  withCredentials: true,
  reconnection: false,
  extraHeaders: mode === "roundrobin" ? { "X-Stickiness": "off" } : {},
});

setTimeout(() => finish({ ok: false, error: "timed out" }), 20000).unref();

socket.on("connect_error", (err) => finish({ ok: false, error: String(err && err.message) }));
socket.on("disconnect", (reason) => finish({ ok: false, error: "disconnected: " + reason }));

socket.on("connect", () => {
  let pings = 0;
  socket.io.engine.on("ping", async () => {
    pings += 1;
    if (pings !== PINGS) return;
    const id = "js-" + Date.now();
    const echo = new Promise((resolve) => {
      socket.on("chat", (msg) => {
        if (msg && msg.id === id) resolve(msg);
      });
    });
    try {
      const ack = await socket.timeout(5000).emitWithAck("chat", { id, from: "visitor", text: "hello from socket.io-client" });
      const got = await echo;
      socket.off("disconnect");
      const transport = socket.io.engine.transport.name;
      socket.disconnect();
      finish({ ok: true, ack, echo: got, pings, transport });
    } catch (err) {
      finish({ ok: false, error: String(err && err.message) });
    }
  });
});
