// What the recording page sends each connection, per audio mode, and what a resumed session is
// sent again. `link` is the page's side: open() (the socket can take audio), send(data), and
// lose(seconds) for audio that could not be kept.
//
// PCM frames can be cut anywhere, so the page keeps the last minute of them and sends a resumed
// session everything from the `resume_from_s` it asks for. An Opus container cannot be entered
// midway and the server decodes each connection's container afresh, so the page keeps recorders
// running from the instants a resume may ask for (OpusSender) and sends the one that fits.

import { FRAME_MS } from "./capture.js";

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
// Audio kept for a resume: the server may ask again for up to max_utterance_s before the drop,
// plus the gap itself (at most the grace period).
const MAX_HISTORY_FRAMES = Math.round((60 * 1000) / FRAME_MS);
// Opus held in one container (about 4 kB/s, a standby since the last final): past this, it goes.
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

  onFinal() {}

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

// Containers: the current connection's (`active`), a reserve begun at the last final (`standby`:
// a restarted server asks for everything from its last stored final), and one begun when the
// socket closed (a blip: the parked session asks for what follows the drop). The next `ready`
// gets the earliest that starts no earlier than it asks for; the others, bar the standby, go.
export class OpusSender {
  constructor(link) {
    this.link = link;
    this.live = false;
    this.capture = null;
    this.containers = []; // [{handle, startS, pending, bytes}]
    this.active = null;
    this.standby = null;
    this.offsetS = 0; // microphone time of the session's time 0 in the audio it was sent
  }

  attach(capture) {
    this.capture = capture;
    this.active = this.newContainer();
    this.standby = this.newContainer();
  }

  newContainer() {
    const container = { startS: 0, pending: [], bytes: 0 };
    container.handle = this.capture.record((blob) => this.onChunk(container, blob));
    if (!container.handle) return null; // stopped already
    container.startS = container.handle.startS;
    this.containers.push(container);
    return container;
  }

  drop(container) {
    if (!container) return;
    this.capture.drop(container.handle);
    this.containers = this.containers.filter((c) => c !== container);
    if (this.active === container) this.active = null;
    if (this.standby === container) this.standby = null;
  }

  // A piece of a container: out at once when it is the live connection's, else held.
  onChunk(container, blob) {
    if (container === this.active && this.live && !container.pending.length && this.link.open()) {
      this.link.send(blob);
      return;
    }
    container.pending.push(blob);
    container.bytes += blob.size;
    if (container.bytes > MAX_PENDING_BYTES && container !== this.active) {
      const wasStandby = container === this.standby;
      this.drop(container);
      if (wasStandby) this.standby = this.newContainer();
    }
  }

  // The reserve follows the finals: what a restarted server will ask for begins at the last one.
  onFinal() {
    if (!this.capture || this.capture.finished) return;
    if (this.standby !== this.active) this.drop(this.standby);
    this.standby = this.newContainer();
  }

  pause() {
    this.live = false;
  }

  // The active container was cut off mid-way: of no use to the next connection.
  onDrop() {
    if (!this.capture) return;
    if (this.active !== this.standby) this.drop(this.active);
    this.active = null;
    this.newContainer();
  }

  onReady(newSession, resumeFromS) {
    let chosen;
    if (newSession || resumeFromS == null) {
      chosen = this.containers.filter((c) => c !== this.standby).at(-1) || this.standby;
      this.offsetS = chosen ? chosen.startS : 0;
    } else {
      // Audio from `target` on (microphone time) is wanted: a container from before it would
      // repeat audio, so the earliest from then on, and what lies between is lost.
      const target = this.offsetS + resumeFromS;
      const later = this.containers.filter((c) => c.startS >= target - 0.3).sort((a, b) => a.startS - b.startS);
      chosen = later[0] || null;
      if (chosen && chosen.startS - target >= 0.05) this.link.lose(chosen.startS - target);
      if (chosen) this.offsetS = chosen.startS - resumeFromS;
    }
    for (const container of [...this.containers]) {
      if (container !== chosen && container !== this.standby) this.drop(container);
    }
    if (chosen && chosen === this.standby) this.standby = this.newContainer();
    this.active = chosen;
    if (!this.link.open()) return;
    if (chosen) for (const blob of chosen.pending) this.link.send(blob);
    if (chosen) chosen.pending = [];
    this.live = true;
  }
}
