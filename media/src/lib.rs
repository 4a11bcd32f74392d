//! loket-media: RTP/RTCP sessions, G.711, DTMF, prompt playback, bridging, the coaching mixer,
//! recording and the WebRTC leg (str0m). Empty until the media engine issue.
