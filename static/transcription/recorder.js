// The recording page: microphone → AudioWorklet (16 kHz s16 frames) → WebSocket protocol v1.
//
// The page authenticates each WebSocket with a 60-second single-use token minted by the server
// for the logged-in user; no long-lived key ever reaches the page. If the socket drops, the page
// reconnects with backoff and resumes the same session (`start` with `resume`). It keeps the most
// recent audio (bounded) so that it can send the server everything from the `resume_from_s` that
// the new `ready` asks for: the gap after a blip, or more after a server restart.

const SAMPLE_RATE = 16000;
const FRAME_MS = 100;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
const BACKOFF_MS = [500, 1000, 2000, 4000];
const DEFAULT_GRACE_S = 30;
// Audio kept for a resume: the server may ask again for up to max_utterance_s before the drop,
// plus the gap itself (at most the grace period).
const MAX_HISTORY_FRAMES = Math.round((60 * 1000) / FRAME_MS);

const ERROR_TEXT = {
  unauthenticated: "Your login has expired. Reload the page, log in again and press Start.",
  quota_exceeded:
    "This workspace has used its audio quota for the month, so recording stopped. What was said so far is saved.",
  concurrency_limit:
    "Your workspace already has the maximum number of recordings running. Stop one of them and try again.",
  no_capacity: "The recognizer is busy right now. Please try again in a minute.",
  overloaded: "The recognizer is busy right now. Please try again in a minute.",
  idle_timeout: "Recording stopped because no audio reached the server for a while.",
  session_limit: "This recording reached the maximum length and was stopped. It is saved.",
  internal_error: "Something went wrong on the server. What was said so far is saved.",
  rate_limited: "Too many failed sign-in attempts came from this network. Wait a few minutes, then press Start.",
  forbidden: "This account or key has been disabled. What was said so far is saved.",
};
// Refusals that a later reconnect attempt cannot fix.
const FATAL_CODES = new Set([
  "quota_exceeded",
  "concurrency_limit",
  "session_limit",
  "idle_timeout",
  "rate_limited",
  "forbidden",
]);

const STATE_BADGE = {
  idle: "Ready",
  starting: "Starting",
  recording: "Live",
  reconnecting: "Reconnecting",
  stopping: "Finishing",
  done: "Saved",
};

const $ = (selector, root = document) => root.querySelector(selector);

function formatTime(seconds) {
  const whole = Math.max(0, seconds);
  const minutes = Math.floor(whole / 60);
  const rest = whole - minutes * 60;
  return `${minutes}:${rest.toFixed(1).padStart(4, "0")}`;
}

function formatClock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// "zh" → the menu's own name for it, else the browser's name for the language, else the code.
function languageName(code, select) {
  const option = Array.from(select.options).find((o) => o.value === code);
  if (option && code !== "auto") return option.textContent.trim();
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class ServerUnreachable extends Error {}

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
      sessionInfo: $("#session-info", root),
      sessionModel: $("#session-model", root),
      detectedWrap: $("#detected-wrap", root),
      detectedLanguage: $("#detected-language", root),
      status: $("#status", root),
      transcript: $("#transcript", root),
      empty: $("#transcript-empty", root),
      clock: $("#clock", root),
      badge: $("#state-badge", root),
      level: $("#level", root),
      done: $("#done", root),
      doneText: $("#done-text", root),
      doneLink: $("#done-link", root),
    };
    this.ui.start.addEventListener("click", () => this.start());
    this.ui.stop.addEventListener("click", () => this.stop());
    window.addEventListener("beforeunload", (event) => {
      if (this.isActive()) event.preventDefault();
    });
    this.reset();
    this.setState("idle");
  }

  reset() {
    this.ws = null;
    this.live = false; // the current socket has said ready: frames go straight out
    this.sessionId = null;
    this.resumeToken = null;
    this.graceS = DEFAULT_GRACE_S;
    this.startFields = null;
    // Audio: frames numbered from Start; the session's time 0 is frame `sessionBase`.
    this.history = []; // [{n, pcm}] the last MAX_HISTORY_FRAMES frames
    this.captured = 0; // frames captured so far
    this.sentFrames = 0; // frames (from Start) the current session has been sent
    this.sessionBase = 0;
    this.lostSeconds = 0;
    this.stopRequested = false;
    this.reconnects = 0;
    this.partials = 0;
    this.lastFinal = new Map(); // session id → highest final segment number shown
    this.segments = new Map(); // "session:segment" → <li>
    this.sessionOrder = new Map(); // session id → 0, 1, … (a fallback session starts anew)
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
    this.clearTranscript();
    this.ui.done.hidden = true;
    this.setState("starting");
    this.showStatus("info", "Asking for the microphone…");
    try {
      await this.openMicrophone();
    } catch (error) {
      this.closeMicrophone();
      this.setState("idle");
      this.showStatus("error", this.microphoneErrorText(error));
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
      sample_rate: 16000,
      encoding: "pcm_s16le",
      channels: 1,
      interim_results: true,
      endpointing_ms: Number(this.ui.endpointing.value),
      language: this.ui.language.value,
    };
    this.showSessionInfo(null);
    this.showStatus("info", "Connecting…");
    try {
      await this.connect({ resume: false });
    } catch (error) {
      this.closeMicrophone();
      this.setState("idle");
      this.showStatus("error", this.connectErrorText(error));
    }
  }

  microphoneErrorText(error) {
    if (!window.isSecureContext || !navigator.mediaDevices) {
      return "The microphone needs a secure connection: open this page over https (or on localhost).";
    }
    switch (error && error.name) {
      case "NotAllowedError":
      case "SecurityError":
        return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar) and press Start again.";
      case "NotFoundError":
      case "OverconstrainedError":
        return "No microphone was found. Connect one and press Start again.";
      case "NotReadableError":
        return "The microphone could not be opened; another application may be using it.";
      default:
        return `The microphone could not be started (${(error && error.message) || error}).`;
    }
  }

  connectErrorText(error) {
    if (error instanceof ServerUnreachable) {
      return "The server can't be reached. Check your connection and press Start to try again.";
    }
    if (error && error.code) return ERROR_TEXT[error.code] || error.message;
    return `Could not start: ${(error && error.message) || error}`;
  }

  async openMicrophone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("insecure context");
    // Raw audio: browser noise suppression and gain control hurt recognition more than they help.
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    this.audioContext = new AudioContext();
    await this.audioContext.audioWorklet.addModule(this.workletUrl);
    const source = this.audioContext.createMediaStreamSource(this.stream);
    this.worklet = new AudioWorkletNode(this.audioContext, "pcm-framer", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { frameMs: FRAME_MS },
    });
    this.worklet.port.onmessage = (event) => this.onFrame(event.data.pcm, event.data.peak);
    const mute = this.audioContext.createGain();
    mute.gain.value = 0; // keeps the graph pulling the worklet without playing the microphone back
    source.connect(this.worklet).connect(mute).connect(this.audioContext.destination);
    if (this.audioContext.state === "suspended") await this.audioContext.resume();
  }

  closeMicrophone() {
    if (this.worklet) this.worklet.port.onmessage = null;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.audioContext) this.audioContext.close().catch(() => {});
    this.stream = this.audioContext = this.worklet = null;
    this.ui.level.style.width = "0%";
  }

  onFrame(pcm, peak) {
    const frame = { n: this.captured, pcm };
    this.captured += 1;
    this.history.push(frame);
    if (this.history.length > MAX_HISTORY_FRAMES) this.history.shift();
    const seconds = (this.captured * FRAME_MS) / 1000;
    this.root.dataset.audioSeconds = seconds.toFixed(1);
    this.ui.clock.textContent = formatClock(seconds);
    this.ui.level.style.width = `${Math.min(100, Math.sqrt(peak) * 100).toFixed(0)}%`;
    if (this.live && this.sentFrames === frame.n && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(pcm);
      this.sentFrames = frame.n + 1;
    }
  }

  // Send the session everything captured from `fromSeconds` of its time on (cutting into a
  // frame when that time falls inside one), then let live frames follow.
  sendFrom(fromSeconds) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const fromSample = this.sessionBase * FRAME_SAMPLES + Math.max(0, Math.round(fromSeconds * SAMPLE_RATE));
    const oldest = this.history.length ? this.history[0].n * FRAME_SAMPLES : this.captured * FRAME_SAMPLES;
    if (fromSample < oldest) this.lostSeconds += (oldest - fromSample) / SAMPLE_RATE;
    for (const frame of this.history) {
      const start = frame.n * FRAME_SAMPLES;
      if (start + FRAME_SAMPLES <= fromSample) continue;
      const skip = Math.max(0, fromSample - start);
      ws.send(skip ? frame.pcm.slice(skip * 2) : frame.pcm);
    }
    this.sentFrames = this.captured;
    this.live = true;
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
    this.live = false;
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
      // A new session starts with the first audio it has not had yet.
      this.sessionBase = this.sessionId ? this.sentFrames : 0;
      this.sessionOrder.set(message.session_id, this.sessionOrder.size);
    }
    this.sessionId = message.session_id;
    this.root.dataset.sessionId = message.session_id;
    this.resumeToken = message.resume_token || null;
    if (message.limits && message.limits.resume_grace_s) this.graceS = message.limits.resume_grace_s;
    this.showSessionInfo(message.config || null);
    this.setState(this.stopRequested ? "stopping" : "recording");
    const fallback = (this.sentFrames - this.sessionBase) * (FRAME_MS / 1000);
    this.sendFrom(resumed ? (message.resume_from_s ?? fallback) : 0);
    if (this.stopRequested) this.sendStop();
    else if (!this.reconnects) this.showStatus("info", "Listening… speak now.");
  }

  onMessage(message) {
    if (message.type === "partial" || message.type === "final") this.showSegment(message);
    else if (message.type === "closed") this.onClosedMessage(message);
  }

  onSocketClosed(event, serverError) {
    this.ws = null;
    this.live = false;
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

  stop() {
    if (!this.isActive() || this.stopRequested) return;
    this.stopRequested = true;
    this.closeMicrophone();
    this.setState(this.state === "recording" ? "stopping" : this.state);
    this.showStatus("info", "Finishing the last sentence…");
    if (this.state === "stopping") this.sendStop();
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
    this.live = false;
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

  // --- transcript ---------------------------------------------------------------------------

  clearTranscript() {
    this.ui.transcript.querySelectorAll("li.seg").forEach((li) => li.remove());
    this.ui.empty.hidden = false;
  }

  // The model the server chose (ready) and, once a final says it, the language it heard.
  showSessionInfo(config) {
    const { sessionInfo, sessionModel, detectedWrap } = this.ui;
    if (!config) {
      sessionInfo.hidden = true;
      detectedWrap.hidden = true;
      delete this.root.dataset.model;
      delete this.root.dataset.detectedLanguage;
      return;
    }
    sessionModel.textContent = config.model || "default";
    this.root.dataset.model = config.model || "";
    sessionInfo.hidden = false;
  }

  showDetectedLanguage(code) {
    if (!code || this.root.dataset.detectedLanguage === code) return;
    this.root.dataset.detectedLanguage = code;
    this.ui.detectedLanguage.textContent = languageName(code, this.ui.language);
    this.ui.detectedWrap.hidden = false;
  }

  showSegment(message) {
    if (message.type === "final" && message.text && message.text.trim()) this.showDetectedLanguage(message.language);
    const session = this.sessionId;
    const key = `${session}:${message.segment}`;
    let item = this.segments.get(key);
    if (item && item.classList.contains("final")) return; // a final re-sent after resuming
    if (message.type === "final") {
      this.lastFinal.set(session, Math.max(message.segment, this.lastFinal.get(session) ?? -1));
    } else {
      this.partials += 1;
      this.root.dataset.partials = String(this.partials);
    }
    if (!item) {
      item = document.createElement("li");
      item.className = "seg";
      item.dataset.order = String(this.sessionOrder.get(session) * 1e6 + message.segment);
      item.dataset.segment = String(message.segment);
      item.innerHTML = '<span class="seg-time"></span><span class="seg-text"></span>';
      this.insertInOrder(item);
      this.segments.set(key, item);
    }
    this.ui.empty.hidden = true;
    const isFinal = message.type === "final";
    item.classList.toggle("final", isFinal);
    item.classList.toggle("partial", !isFinal);
    $(".seg-time", item).textContent = isFinal ? `${formatTime(message.start)} – ${formatTime(message.end)}` : formatTime(message.start);
    $(".seg-text", item).textContent = message.text || (isFinal ? "" : "…");
    if (isFinal && !message.text.trim()) item.classList.add("blank");
    item.scrollIntoView({ block: "nearest" });
  }

  insertInOrder(item) {
    const order = Number(item.dataset.order);
    for (const other of this.ui.transcript.querySelectorAll("li.seg")) {
      if (Number(other.dataset.order) > order) {
        other.before(item);
        return;
      }
    }
    this.ui.transcript.append(item);
  }

  // A test hook (and a way to try the resume path by hand): drop the socket as a network blip would.
  simulateNetworkDrop() {
    if (this.ws) this.ws.close(4000, "simulated network drop");
  }
}

const root = document.getElementById("recorder");
if (root) window.asrRecorder = new Recorder(root);
