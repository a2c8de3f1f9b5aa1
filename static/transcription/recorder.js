// The recording page: microphone → Opus (MediaRecorder) or 16 kHz s16 frames (AudioWorklet) →
// WebSocket protocol v1. The audio menu chooses; the choice is remembered in localStorage, and a
// browser without one of the two gets the other (capture.js).
//
// The page authenticates each WebSocket with a 60-second single-use token minted by the server
// for the logged-in user; no long-lived key ever reaches the page. If the socket drops, the page
// reconnects with backoff and resumes the same session (`start` with `resume`), sending it again
// what the new `ready` asks for (`resume_from_s`) as far as the audio mode allows (senders.js).

import { FRAME_MS, OpusCapture, PcmCapture, availableModes, openStream, setUpAudioMenu } from "./capture.js";
import {
  ERROR_TEXT,
  FATAL_CODES,
  STATE_BADGE,
  ServerUnreachable,
  connectErrorText,
  formatClock,
  microphoneErrorText,
} from "./messages.js";
import { OpusSender, PcmSender } from "./senders.js";
import { TranscriptView } from "./transcript-view.js";

// Opus is decoded on the server at this rate: Whisper's own, so the engine gets what it reads
// with no second resampling and a third of the bytes 48 kHz would take past the gateway.
const START_AUDIO = {
  pcm: { encoding: "pcm_s16le", sample_rate: 16000 },
  opus: { encoding: "opus", sample_rate: 16000 },
};
const BACKOFF_MS = [500, 1000, 2000, 4000];
const DEFAULT_GRACE_S = 30;

const $ = (selector, root = document) => root.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Recorder {
  constructor(root) {
    this.root = root;
    this.tokenUrl = root.dataset.tokenUrl;
    this.wsPath = root.dataset.wsPath;
    this.workletUrl = root.dataset.workletUrl;
    this.transcriptUrlTemplate = root.dataset.transcriptUrl; // ".../00000000-0000-0000-0000-000000000000/"
    this.csrfToken = $('meta[name="csrf-token"]').content;
    this.ui = {
      start: $("#start", root),
      stop: $("#stop", root),
      endpointing: $("#endpointing", root),
      language: $("#language", root),
      audioMode: $("#audio-mode", root),
      status: $("#status", root),
      clock: $("#clock", root),
      badge: $("#state-badge", root),
      level: $("#level", root),
      done: $("#done", root),
      doneText: $("#done-text", root),
      doneLink: $("#done-link", root),
    };
    this.ui.start.addEventListener("click", () => this.start());
    this.ui.stop.addEventListener("click", () => this.stop());
    setUpAudioMenu(this.ui.audioMode, root);
    this.view = new TranscriptView(root);
    window.addEventListener("beforeunload", (event) => {
      if (this.isActive()) event.preventDefault();
    });
    this.reset();
    this.setState("idle");
  }

  reset() {
    this.ws = null;
    this.sessionId = null;
    this.resumeToken = null;
    this.graceS = DEFAULT_GRACE_S;
    this.startFields = null;
    this.lostSeconds = 0;
    delete this.root.dataset.lostSeconds;
    this.bytesSent = 0;
    this.captureFinished = Promise.resolve();
    this.stopRequested = false;
    this.reconnects = 0;
    this.lastFinal = new Map(); // session id → highest final segment number shown
  }

  isActive() {
    return ["starting", "recording", "reconnecting", "stopping"].includes(this.state);
  }

  setState(state) {
    this.state = state;
    this.root.dataset.state = state;
    this.ui.badge.textContent = STATE_BADGE[state];
    const busy = this.isActive();
    this.ui.start.disabled = busy;
    this.ui.endpointing.disabled = busy;
    this.ui.language.disabled = busy;
    this.ui.audioMode.disabled = busy;
    this.ui.stop.disabled = !busy || this.stopRequested;
  }

  showStatus(kind, text) {
    const { status } = this.ui;
    clearTimeout(this.statusTimer);
    status.className = `status status-${kind}`;
    status.textContent = text;
    status.hidden = !text;
    this.root.dataset.lastStatus = text;
  }

  flashStatus(kind, text, ms = 6000) {
    this.showStatus(kind, text);
    this.statusTimer = setTimeout(() => {
      if (this.ui.status.textContent === text) this.showStatus("info", this.state === "recording" ? "Listening…" : "");
    }, ms);
  }

  // --- capture ------------------------------------------------------------------------------

  async start() {
    if (this.isActive()) return;
    this.reset();
    this.mode = this.ui.audioMode.value;
    this.root.dataset.audioMode = this.mode;
    const link = {
      open: () => Boolean(this.ws && this.ws.readyState === WebSocket.OPEN),
      send: (data) => this.send(data),
      lose: (seconds) => {
        this.lostSeconds += seconds;
        this.root.dataset.lostSeconds = this.lostSeconds.toFixed(2);
      },
    };
    this.sender = this.mode === "opus" ? new OpusSender(link) : new PcmSender(link);
    this.view.reset();
    this.view.clear();
    this.ui.done.hidden = true;
    this.setState("starting");
    this.showStatus("info", "Asking for the microphone…");
    try {
      await this.openMicrophone();
    } catch (error) {
      this.closeMicrophone();
      this.setState("idle");
      this.showStatus("error", microphoneErrorText(error));
      return;
    }
    if (this.stopRequested) {
      this.closeMicrophone();
      this.stopRequested = false;
      this.setState("idle");
      this.showStatus("info", "");
      return;
    }
    this.startFields = {
      type: "start",
      ...START_AUDIO[this.mode],
      channels: 1,
      interim_results: true,
      endpointing_ms: Number(this.ui.endpointing.value),
      language: this.ui.language.value,
    };
    this.view.showSessionInfo(null);
    this.showStatus("info", "Connecting…");
    try {
      await this.connect({ resume: false });
    } catch (error) {
      this.closeMicrophone();
      this.setState("idle");
      this.showStatus("error", connectErrorText(error));
    }
  }

  async openMicrophone() {
    if (!availableModes()[this.mode]) throw new Error("this browser cannot record in this audio mode; choose the other");
    this.stream = await openStream();
    const sender = this.sender;
    if (sender instanceof OpusSender) {
      this.capture = new OpusCapture(this.stream, (seconds, peak) => this.showLevel(seconds, peak));
    } else {
      this.capture = new PcmCapture(this.stream, this.workletUrl, (pcm, peak) => {
        sender.onFrame(pcm);
        this.showLevel(sender.captured * (FRAME_MS / 1000), peak);
      });
    }
    await this.capture.open();
    if (sender instanceof OpusSender) sender.attach(this.capture);
  }

  closeMicrophone() {
    if (this.capture) this.capture.close();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = this.capture = null;
    this.ui.level.style.width = "0%";
  }

  showLevel(seconds, peak) {
    this.root.dataset.audioSeconds = seconds.toFixed(1);
    this.ui.clock.textContent = formatClock(seconds);
    this.ui.level.style.width = `${Math.min(100, Math.sqrt(peak) * 100).toFixed(0)}%`;
  }

  send(data) {
    this.ws.send(data);
    this.bytesSent += data.byteLength ?? data.size;
    this.root.dataset.bytesSent = String(this.bytesSent);
  }

  // --- connection ---------------------------------------------------------------------------

  async mintToken() {
    let response;
    try {
      response = await fetch(this.tokenUrl, {
        method: "POST",
        headers: { "X-CSRFToken": this.csrfToken, Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch {
      throw new ServerUnreachable();
    }
    if (response.status === 401 || response.status === 403) {
      throw Object.assign(new Error("not logged in"), { code: "unauthenticated", fatal: true });
    }
    if (!response.ok) throw new ServerUnreachable();
    return (await response.json()).token;
  }

  // Open one socket and send `start` (with `resume` when continuing a session). Resolves on
  // `ready`; rejects with ServerUnreachable or an error carrying the server's code.
  async connect({ resume }) {
    const token = await this.mintToken();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${this.wsPath}?token=${encodeURIComponent(token)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    if (this.sender) this.sender.pause();
    const start = { ...this.startFields };
    if (resume) {
      start.resume = { session_id: this.sessionId, resume_token: this.resumeToken };
      if (this.lastFinal.has(this.sessionId)) start.resume.last_segment = this.lastFinal.get(this.sessionId);
    }

    await new Promise((resolve, reject) => {
      let ready = false;
      let serverError = null;
      ws.onopen = () => ws.send(JSON.stringify(start));
      ws.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.type === "ready") {
          ready = true;
          this.onReady(message);
          resolve();
        } else if (message.type === "error") {
          serverError = message;
        } else {
          this.onMessage(message);
        }
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        if (!ready) {
          this.ws = null;
          if (serverError) reject(Object.assign(new Error(serverError.message), serverError, { close: event.code }));
          else reject(new ServerUnreachable());
          return;
        }
        this.onSocketClosed(event, serverError);
      };
    });
  }

  onReady(message) {
    const resumed = Boolean(message.resumed) && message.session_id === this.sessionId;
    if (!resumed) {
      this.view.addSession(message.session_id);
    }
    this.sessionId = message.session_id;
    this.root.dataset.sessionId = message.session_id;
    this.resumeToken = message.resume_token || null;
    if (message.limits && message.limits.resume_grace_s) this.graceS = message.limits.resume_grace_s;
    this.view.showSessionInfo(message.config || null);
    this.setState(this.stopRequested ? "stopping" : "recording");
    this.sender.onReady(!resumed, message.resume_from_s);
    if (this.stopRequested) this.captureFinished.then(() => this.sendStop());
    else if (!this.reconnects) this.showStatus("info", "Listening… speak now.");
  }

  onMessage(message) {
    if (message.type === "final") {
      const shown = this.lastFinal.get(this.sessionId) ?? -1;
      this.lastFinal.set(this.sessionId, Math.max(message.segment, shown));
      this.sender.onFinal();
    }
    if (message.type === "partial" || message.type === "final") this.view.showSegment(message, this.sessionId);
    else if (message.type === "closed") this.onClosedMessage(message);
  }

  onSocketClosed(event, serverError) {
    this.ws = null;
    if (this.sender) this.sender.pause();
    if (this.state === "done") return;
    if (serverError) {
      this.finish();
      this.showStatus("error", ERROR_TEXT[serverError.code] || serverError.message);
      this.showDone(false);
      return;
    }
    if (this.state === "idle") return;
    this.reconnect();
  }

  async reconnect() {
    this.setState("reconnecting");
    this.sender.onDrop();
    this.showStatus("warning", "Connection lost — reconnecting…");
    const droppedAt = performance.now();
    for (let attempt = 0; ; attempt++) {
      await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]);
      if (performance.now() - droppedAt > this.graceS * 1000) break;
      try {
        await this.connect({ resume: Boolean(this.resumeToken) });
        this.reconnects += 1;
        this.root.dataset.reconnects = String(this.reconnects);
        const lost = this.lostSeconds >= 0.1 ? ` (${this.lostSeconds.toFixed(1)} s of audio could not be kept)` : "";
        this.flashStatus("success", `Reconnected — recording continues${lost}.`);
        return;
      } catch (error) {
        if (error instanceof ServerUnreachable || (error.code === "unauthenticated" && !error.fatal)) continue;
        if (error.fatal || FATAL_CODES.has(error.code)) {
          this.finish();
          this.showStatus("error", ERROR_TEXT[error.code] || error.message);
          this.showDone(false);
          return;
        }
        // The server cannot resume this session (expired, unknown): go on in a new one.
        this.resumeToken = null;
        try {
          await this.connect({ resume: false });
          this.reconnects += 1;
          this.root.dataset.reconnects = String(this.reconnects);
          this.flashStatus("warning", "Reconnected in a new session; the earlier part is saved separately.");
          return;
        } catch {
          continue;
        }
      }
    }
    this.finish();
    this.showStatus(
      "error",
      "The connection to the server was lost and could not be restored. What reached the server is saved.",
    );
    this.showDone(false);
  }

  // --- stopping -----------------------------------------------------------------------------

  // The capture's last audio (an Opus recorder's final piece comes after its stop()) goes out or
  // is held before the v1 stop, so the last sentence gets its final.
  stop() {
    if (!this.isActive() || this.stopRequested) return;
    this.stopRequested = true;
    const capture = this.capture;
    this.captureFinished = (capture ? capture.finish() : Promise.resolve()).finally(() => this.closeMicrophone());
    this.setState(this.state === "recording" ? "stopping" : this.state);
    this.showStatus("info", "Finishing the last sentence…");
    if (this.state === "stopping") this.captureFinished.then(() => this.sendStop());
  }

  sendStop() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "stop" }));
  }

  onClosedMessage(message) {
    this.finish();
    const seconds = Number(message.audio_seconds || 0);
    this.showStatus("info", "");
    this.showDone(true, `${message.segments} segment${message.segments === 1 ? "" : "s"}, ${formatClock(seconds)} of audio`);
  }

  finish() {
    if (this.sender) this.sender.pause();
    this.closeMicrophone();
    this.stopRequested = false;
    this.setState("done");
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
    }
  }

  showDone(complete, detail = "") {
    if (!this.sessionId) return;
    this.ui.done.hidden = false;
    this.ui.doneText.textContent = complete ? `Transcript saved — ${detail}.` : "The transcript so far is saved.";
    this.ui.doneLink.href = this.transcriptUrlTemplate.replace("00000000-0000-0000-0000-000000000000", this.sessionId);
  }

  // A test hook (and a way to try the resume path by hand): drop the socket as a network blip would.
  simulateNetworkDrop() {
    if (this.ws) this.ws.close(4000, "simulated network drop");
  }
}

const root = document.getElementById("recorder");
if (root) window.asrRecorder = new Recorder(root);
