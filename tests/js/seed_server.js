// The seed's chat server, on an official socket.io server from npm: a stack nobody here
// wrote, for the tests. Agent emits chat_message, the server emits message_from_kaushik to
// all; visitor emits chat_user, the server emits message_from_user to all. No acks, no
// X-Replica. It answers /healthz, which the stack file's health checks ask.
//
// usage: node seed_server.js VERSION PORT NAME [header]
//   VERSION: 4 (socket.io v4, Engine.IO v4) or 2 (socket.io 2, Engine.IO v3), installed as
//            the npm aliases socket.io-v4 and socket.io-v2 (scripts/test.sh does)
//   header:  answer every request with X-Backend: NAME
// Prints "listening PORT" once it listens.
"use strict";
const http = require("http");

const [version, port, name, header] = process.argv.slice(2);
// /healthz for the balancers' health checks (the stack file's); the rest is socket.io's.
const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404);
  res.end();
});
const io = require(`socket.io-v${version}`)(server, { pingInterval: 3000, pingTimeout: 7000 });
if (header === "header") {
  // After socket.io took the server's request listeners: this one runs first, for every
  // request, the Engine.IO ones included.
  server.prependListener("request", (req, res) => res.setHeader("X-Backend", name));
}
io.on("connection", (socket) => {
  socket.on("chat_message", (msg) => io.emit("message_from_kaushik", msg));
  socket.on("chat_user", (msg) => io.emit("message_from_user", msg));
});
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
