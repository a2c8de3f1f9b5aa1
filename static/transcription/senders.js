// What the recording page sends each connection, per audio mode, and what a resumed session is
// sent again. `link` is the page's side: open() (the socket can take audio), send(data), and
// lose(seconds) for audio that could not be kept.
//
// PCM frames can be cut anywhere, so the page keeps the last minute of them and sends a resumed
// session everything from the `resume_from_s` it asks for. An Opus container cannot be entered
// midway and the server decodes each connection's container afresh, so a dropped socket starts a
// new recorder (a new container) at once, held until the next connection is ready; what the server
// asks for from before the drop (only after a server restart) was in the old container and is lost.

import { FRAME_MS } from "./capture.js";

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
// Audio kept for a resume: the server may ask again for up to max_utterance_s before the drop,
// plus the gap itself (at most the grace period).
const MAX_HISTORY_FRAMES = Math.round((60 * 1000) / FRAME_MS);
// Opus held while reconnecting (about 4 kB/s): past this, a new container from then on.
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

export class PcmSender {
  constructor(link) {
    this.link = link;
    this.live = false; // the current socket has said ready: frames go straight out
    // Frames numbered from Start; the session's time 0 is frame `sessionBase`.
    this.history = []; // [{n, pcm}] the last MAX_HISTORY_FRAMES frames
    this.captured = 0; // frames captured so far
    this.sentFrames = 0; // frames (from Start) the current session has been sent
    this.sessionBase = 0;
  }

  onFrame(pcm) {
    const frame = { n: this.captured, pcm };
    this.captured += 1;
    this.history.push(frame);
    if (this.history.length > MAX_HISTORY_FRAMES) this.history.shift();
    if (this.live && this.sentFrames === frame.n && this.link.open()) {
      this.link.send(pcm);
      this.sentFrames = frame.n + 1;
    }
  }

  pause() {
    this.live = false;
  }

  onDrop() {}

  // On `ready`: a new session starts with the first audio the one before has not had; a resumed
  // one is sent again from `resumeFromS` of its time (else from what it had been sent).
  onReady(newSession, resumeFromS) {
    if (newSession) this.sessionBase = this.sentFrames;
    const fallback = (this.sentFrames - this.sessionBase) * (FRAME_MS / 1000);
    this.sendFrom(newSession ? 0 : (resumeFromS ?? fallback));
  }

  // Everything captured from `fromSeconds` of the session's time on (cutting into a frame when
  // that time falls inside one), then live frames.
  sendFrom(fromSeconds) {
    if (!this.link.open()) return;
    const fromSample = this.sessionBase * FRAME_SAMPLES + Math.max(0, Math.round(fromSeconds * SAMPLE_RATE));
    const oldest = this.history.length ? this.history[0].n * FRAME_SAMPLES : this.captured * FRAME_SAMPLES;
    if (fromSample < oldest) this.link.lose((oldest - fromSample) / SAMPLE_RATE);
    for (const frame of this.history) {
      const start = frame.n * FRAME_SAMPLES;
      if (start + FRAME_SAMPLES <= fromSample) continue;
      const skip = Math.max(0, fromSample - start);
      this.link.send(skip ? frame.pcm.slice(skip * 2) : frame.pcm);
    }
    this.sentFrames = this.captured;
    this.live = true;
  }
}

export class OpusSender {
  constructor(link) {
    this.link = link;
    this.live = false;
    this.capture = null; // the OpusCapture whose pieces these are
    this.pending = []; // pieces of the current container not sent yet
    this.pendingBytes = 0;
    this.containerStartS = 0; // when the current container began (microphone time)
    this.sessionStartS = 0; // when the current session's audio began
  }

  // A piece of the container: out at once when the socket is ready, else held for the next.
  onChunk(blob) {
    if (this.live && !this.pending.length && this.link.open()) {
      this.link.send(blob);
      return;
    }
    this.pending.push(blob);
    this.pendingBytes += blob.size;
    if (this.pendingBytes > MAX_PENDING_BYTES) this.newContainer();
  }

  // A container is whole or useless, so nothing is cut from one: a new one starts from now
  // (none once the recording is stopped, the old one's rest being of no use to a new connection).
  newContainer() {
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.capture || this.capture.finished) return;
    this.containerStartS = this.capture.seconds();
    this.capture.restart();
  }

  pause() {
    this.live = false;
  }

  onDrop() {
    this.newContainer();
  }

  onReady(newSession, resumeFromS) {
    if (newSession) {
      this.sessionStartS = this.containerStartS;
    } else if (resumeFromS != null) {
      const gap = this.containerStartS - this.sessionStartS - resumeFromS;
      if (gap >= 0.05) this.link.lose(gap);
    }
    if (!this.link.open()) return;
    for (const blob of this.pending) this.link.send(blob);
    this.pending = [];
    this.pendingBytes = 0;
    this.live = true;
  }
}
