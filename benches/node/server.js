// The reference for benches/replica_vs_node.rs: the official socket.io v4 server doing what a
// stickyscope replica does with a chat message: echo it to the sender, broadcast it to every
// other socket, and ack {ok, replica}. Usage: node server.js PORT (socket.io resolved from
// NODE_PATH; the bench script installs it into a temporary folder).
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3100);
const io = new Server(port, { transports: ["websocket", "polling"] });

io.on("connection", (socket) => {
  socket.on("chat", (msg, ack) => {
    if (!msg || typeof msg.id !== "string" || typeof msg.text !== "string") {
      if (typeof ack === "function") ack({ ok: false, error: "not a chat message" });
      return;
    }
    const out = { id: msg.id, from: msg.from, text: msg.text, replica: "node", at: Date.now() };
    socket.emit("chat", out);
    socket.broadcast.emit("chat", out);
    if (typeof ack === "function") ack({ ok: true, replica: "node" });
  });
});

console.log(`listening on ${port}`);
