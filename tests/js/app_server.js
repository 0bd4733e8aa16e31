// A company's app on an official socket.io 4 server from npm, as QA meets it on staging:
// Socket.IO mounted on its own path, users in a namespace, and a middleware that refuses a
// CONNECT without the right token, tenant header and login cookie. In the namespace it
// speaks stickyscope's chat (stack/contract/src/chat.rs): a `chat` is acked
// `{ok, replica}` and passed to the other sockets with `replica` and `at`; a `receipt` is
// passed on with `replica`.
//
// usage: node app_server.js PORT NAME TOKEN[,TOKEN…]   (any of the tokens is let in)
// Prints "listening PORT" once it listens.
"use strict";
const http = require("http");

const [port, name, tokenList] = process.argv.slice(2);
const tokens = tokenList.split(",");
const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404);
  res.end();
});
const io = require("socket.io-v4")(server, {
  path: "/ws/socket.io",
  pingInterval: 3000,
  pingTimeout: 7000,
});
const chat = io.of("/chat");
chat.use((socket, next) => {
  const { auth, headers } = socket.handshake;
  const cookies = headers.cookie || "";
  if (!tokens.includes(auth.token)) return next(new Error("not authorized"));
  if (headers["x-tenant"] !== "acme") return next(new Error("unknown tenant"));
  if (!cookies.split(/;\s*/).includes("session=s-1")) return next(new Error("not logged in"));
  next();
});
chat.on("connection", (socket) => {
  socket.on("chat", (msg, ack) => {
    if (typeof ack === "function") ack({ ok: true, replica: name });
    socket.broadcast.emit("chat", { ...msg, replica: name, at: Date.now() });
  });
  socket.on("receipt", (receipt) => socket.broadcast.emit("receipt", { ...receipt, replica: name }));
});
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
