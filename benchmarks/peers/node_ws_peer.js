// The stack of the vendor's Electron example: Node.js and the `ws` package, answering each EVENT
// with a DISPLAY. Prints {"port": N, "pid": N} once listening.
const { WebSocketServer } = require("ws");
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
server.on("connection", (socket) => {
  socket.on("message", (data) => {
    const event = JSON.parse(data);
    socket.send(JSON.stringify({ command: "DISPLAY", accession: event.accession }));
  });
});
server.on("listening", () => console.log(JSON.stringify({ port: server.address().port, pid: process.pid })));
process.on("SIGTERM", () => process.exit(0));
