// The page's live connection, shared by the workspace and the board: a WebSocket to `path` that
// says `changed` whenever the page's state changed (and once on every (re)connection, so the page
// reads it whole again), and carries the softphone's signalling. It reconnects with back-off.
"use strict";

function followLive(path, onChanged, text) {
  const status = document.getElementById("connection");
  let socket = null;
  let retry = 500;
  loketSoftphone.attach((message) => {
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  });
  function connect() {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`);
    socket.onopen = () => {
      retry = 500;
      status.textContent = text("connected");
      loketSoftphone.onSocketOpen();
    };
    socket.onmessage = (event) => {
      if (event.data === "changed") onChanged();
      else loketSoftphone.onSignal(JSON.parse(event.data));
    };
    socket.onclose = () => {
      status.textContent = text("reconnecting");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }
  connect();
}
