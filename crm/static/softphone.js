// The browser softphone, shared by the workspace and the board: one RTCPeerConnection to loket's
// media engine, kept while the page is open; loket bridges each call the agent accepts (or the
// supervisor coaches) to it. Its offer and loket's answer ride the page's WebSocket, through the
// `send` function the page attaches. Muting stops the microphone's audio in the browser.
"use strict";

const loketSoftphone = (() => {
  const box = document.getElementById("softphone");
  const text = (key) => box.querySelector(`[data-text="${key}"]`)?.textContent ?? key;
  const state = box.querySelector("#softphone-state");
  const muteButton = box.querySelector("#softphone-mute");
  const microphone = box.querySelector("#microphone");
  const phone = { pc: null, stream: null };
  let send = () => false;

  function show(key) {
    state.textContent = text(`softphone-${key}`);
    state.dataset.state = key;
    muteButton.disabled = key !== "on";
  }

  async function openMicrophone() {
    const audio = microphone.value ? { deviceId: { exact: microphone.value } } : true;
    return navigator.mediaDevices.getUserMedia({ audio });
  }

  // Device names are known once the browser allowed the microphone.
  async function listMicrophones() {
    const chosen = microphone.value;
    for (const option of [...microphone.options].slice(1)) option.remove();
    for (const device of await navigator.mediaDevices.enumerateDevices()) {
      if (device.kind !== "audioinput" || !device.deviceId) continue;
      const option = document.createElement("option");
      option.textContent = device.label || device.deviceId;
      option.value = device.deviceId;
      microphone.append(option);
    }
    microphone.value = chosen;
  }

  function sendOffer() {
    const pc = phone.pc;
    if (pc && pc.signalingState === "have-local-offer") {
      send({ type: "softphone-offer", sdp: pc.localDescription.sdp });
    }
  }

  function close() {
    if (!phone.pc) return;
    phone.pc.close();
    phone.stream.getTracks().forEach((track) => track.stop());
    phone.pc = null;
    phone.stream = null;
  }

  async function connect() {
    close();
    show("connecting");
    let stream;
    try {
      stream = await openMicrophone();
    } catch {
      show("no-microphone");
      return;
    }
    const pc = new RTCPeerConnection();
    Object.assign(phone, { pc, stream });
    for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    pc.ontrack = (event) => {
      box.querySelector("#softphone-audio").srcObject = event.streams[0] ?? new MediaStream([event.track]);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== phone.pc) return;
      if (pc.connectionState === "connected") show("on");
      else if (["failed", "closed", "disconnected"].includes(pc.connectionState)) show("failed");
    };
    // No candidates of the browser's are needed: loket is ICE-lite and learns the address from
    // the browser's checks, so the offer goes at once.
    await pc.setLocalDescription(await pc.createOffer());
    sendOffer();
    listMicrophones();
  }

  box.querySelector("#softphone-connect").addEventListener("click", connect);

  // Another microphone replaces the track in place: the call goes on.
  microphone.addEventListener("change", async () => {
    const sender = phone.pc?.getSenders().find((candidate) => candidate.track?.kind === "audio");
    if (!sender) return;
    try {
      const stream = await openMicrophone();
      const [track] = stream.getAudioTracks();
      track.enabled = sender.track.enabled;
      await sender.replaceTrack(track);
      phone.stream.getTracks().forEach((old) => old.stop());
      phone.stream = stream;
    } catch {
      show("no-microphone");
    }
  });

  muteButton.addEventListener("click", () => {
    const track = phone.stream?.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    muteButton.setAttribute("aria-pressed", String(!track.enabled));
    muteButton.textContent = text(track.enabled ? "mute" : "unmute");
  });

  // The audio's counters once a second, so that the user sees it flow both ways.
  setInterval(async () => {
    if (!phone.pc) return;
    let sent = 0;
    let received = 0;
    (await phone.pc.getStats()).forEach((report) => {
      if (report.kind !== "audio") return;
      if (report.type === "outbound-rtp") sent += report.packetsSent;
      if (report.type === "inbound-rtp") received += report.packetsReceived;
    });
    box.querySelector("#softphone-audio-stats").textContent =
      `${sent} ${text("packets-sent")} · ${received} ${text("packets-received")}`;
  }, 1000);

  return {
    // `sendMessage(object)` sends on the page's socket; false when it is not open.
    attach(sendMessage) {
      send = sendMessage;
    },
    // A (re)opened socket: an offer the previous one did not answer goes again.
    onSocketOpen: sendOffer,
    async onSignal(message) {
      if (message.type === "softphone-answer" && phone.pc?.signalingState === "have-local-offer") {
        await phone.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      } else if (message.type === "softphone-error") {
        close();
        show("failed");
      }
    },
  };
})();
