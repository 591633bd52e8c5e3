// A desk program written as reader-kit integrators write it: the npm socket.io-client,
// connected to the kit's service. Every event received is printed as one JSON line
// ({"event", "data"}); lines of JSON on standard input are commands:
// {"emit": "/get_aa", "data": {...}} sends a client event, {"close": true} disconnects.
// usage: node kit_client.js URL [OPTIONS_JSON]   (OPTIONS_JSON: socket.io-client options)
"use strict";
const { io } = require("socket.io-client");
const readline = require("readline");

const url = process.argv[2];
const options = Object.assign({ reconnection: false, timeout: 10000 }, JSON.parse(process.argv[3] || "{}"));
const socket = io(url, options);
// t: wall-clock milliseconds when the event reached this client (the bench compares it with the tap)
const print = (event, data) =>
  process.stdout.write(JSON.stringify({ event, data, t: performance.timeOrigin + performance.now() }) + "\n");

socket.on("connect", () => print("connect", { id: socket.id, transport: socket.io.engine.transport.name }));
socket.on("connect_error", (err) => { print("connect_error", { message: err.message }); process.exit(3); });
socket.on("disconnect", (reason) => print("disconnect", { reason }));
socket.onAny((event, data) => print(event, data));
socket.io.engine && socket.io.on("open", () => {
  socket.io.engine.on("upgrade", (transport) => print("upgrade", { transport: transport.name }));
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.close) {
    socket.close();
    setTimeout(() => process.exit(0), 50);
  } else {
    socket.emit(command.emit, command.data);
  }
});
