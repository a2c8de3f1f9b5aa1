// The recording page's two ways to capture the microphone, and which of them this browser has.
//
// PCM: an AudioWorklet (pcm-worklet.js) resamples to 16 kHz s16 and posts 100 ms frames; the page
// keeps the last minute of them so a resumed session can be sent audio again from any instant.
// Opus: MediaRecorder encodes the microphone to Opus in WebM (Ogg where that is what the browser
// records) and hands over a piece of the container every TIMESLICE_MS; about 9 times smaller on
// the wire than PCM (docs/benchmarks.md#the-recording-page-opus-or-pcm). A container cannot be
// entered at an arbitrary instant, so a new connection gets a new recorder (`record`).

export const FRAME_MS = 100;
export const TIMESLICE_MS = 100; // short, so partials stay as live as with 100 ms PCM frames
// Speech at 32 kbit/s Opus is as accurate as 16 kHz PCM here (docs/benchmarks.md), and a third of
// the bytes of Chromium's own choice (about 95 kbit/s); 16 kbit/s began to cost words.
export const OPUS_BITS_PER_SECOND = 32000;
const OPUS_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus"];
const AUDIO_MODE_KEY = "asr.record.audio";

// The Opus container this browser's MediaRecorder can record, or null.
export function opusMimeType() {
  if (typeof MediaRecorder === "undefined" || typeof MediaRecorder.isTypeSupported !== "function") return null;
  return OPUS_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || null;
}

export function hasAudioWorklet() {
  return typeof AudioWorkletNode !== "undefined" && typeof AudioContext !== "undefined";
}

// The modes this browser can capture in: {opus: bool, pcm: bool}.
export function availableModes() {
  return { opus: opusMimeType() !== null, pcm: hasAudioWorklet() };
}

// The audio menu: what this browser cannot do is offered greyed out; it starts at the choice
// remembered in localStorage, else at the page's default, else at what the browser has.
export function setUpAudioMenu(select, root) {
  const available = availableModes();
  for (const option of select.options) {
    if (available[option.value]) continue;
    option.disabled = true;
    option.textContent += " — not in this browser";
  }
  let stored = null;
  try {
    stored = localStorage.getItem(AUDIO_MODE_KEY);
  } catch {
    // storage off (private mode, a policy): the page's default each time
  }
  const fallback = Array.from(select.options).find((o) => !o.disabled);
  if (stored && available[stored]) select.value = stored;
  else if (!available[select.value] && fallback) select.value = fallback.value;
  root.dataset.audioMode = select.value;
  select.addEventListener("change", () => {
    root.dataset.audioMode = select.value;
    try {
      localStorage.setItem(AUDIO_MODE_KEY, select.value);
    } catch {
      // not remembered this time, still used
    }
  });
}

// Raw audio: browser noise suppression and gain control hurt recognition more than they help.
export function openStream() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("insecure context");
  return navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
}

// Microphone → AudioWorklet → onFrame(pcm ArrayBuffer of FRAME_MS at 16 kHz, peak 0..1).
export class PcmCapture {
  constructor(stream, workletUrl, onFrame) {
    this.stream = stream;
    this.workletUrl = workletUrl;
    this.onFrame = onFrame;
  }

  async open() {
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

  // Nothing is held back: every frame has been handed over.
  finish() {
    return Promise.resolve();
  }

  close() {
    if (this.worklet) this.worklet.port.onmessage = null;
    if (this.audioContext) this.audioContext.close().catch(() => {});
    this.audioContext = this.worklet = null;
  }
}

// Microphone → MediaRecorders (Opus): each `record` is a new recorder, a new container from that
// instant, handing over a piece every TIMESLICE_MS; several may run at once (senders.js keeps one
// in reserve for a resume). onTick(seconds, peak) every FRAME_MS for the clock and the level meter
// (the meter only where Web Audio exists).
export class OpusCapture {
  constructor(stream, onTick) {
    this.stream = stream;
    this.onTick = onTick;
    this.mimeType = opusMimeType();
    this.recorders = new Set();
    this.finished = false; // stopped for good: no new recorder
  }

  async open() {
    if (typeof AudioContext !== "undefined") {
      this.audioContext = new AudioContext();
      this.analyser = this.audioContext.createAnalyser();
      this.analyser.fftSize = 2048;
      this.samples = new Float32Array(this.analyser.fftSize);
      this.audioContext.createMediaStreamSource(this.stream).connect(this.analyser);
      if (this.audioContext.state === "suspended") await this.audioContext.resume();
    }
    this.startedAt = performance.now();
    this.ticker = setInterval(() => this.tick(), FRAME_MS);
  }

  // A new container from now: {startS, ...}; onChunk(blob) gets its pieces until it is dropped.
  record(onChunk) {
    if (this.finished) return null;
    const recorder = new MediaRecorder(this.stream, {
      mimeType: this.mimeType,
      audioBitsPerSecond: OPUS_BITS_PER_SECOND,
    });
    const handle = { recorder, startS: this.seconds(), dropped: false };
    recorder.ondataavailable = (event) => {
      if (!handle.dropped && event.data.size) onChunk(event.data);
    };
    handle.stopped = new Promise((resolve) => {
      recorder.onstop = resolve;
      recorder.onerror = resolve;
    });
    this.recorders.add(handle);
    recorder.start(TIMESLICE_MS);
    return handle;
  }

  // No more pieces from this one.
  drop(handle) {
    handle.dropped = true;
    this.recorders.delete(handle);
    if (handle.recorder.state !== "inactive") handle.recorder.stop();
  }

  // Seconds since the microphone opened.
  seconds() {
    return (performance.now() - this.startedAt) / 1000;
  }

  tick() {
    let peak = 0;
    if (this.analyser) {
      this.analyser.getFloatTimeDomainData(this.samples);
      for (const s of this.samples) peak = Math.max(peak, Math.abs(s));
    }
    this.onTick(this.seconds(), peak);
  }

  // Stop recording; resolves once each recorder's last piece (which comes after stop()) is handed over.
  async finish() {
    this.finished = true;
    const handles = [...this.recorders];
    for (const handle of handles) if (handle.recorder.state !== "inactive") handle.recorder.stop();
    await Promise.all(handles.map((handle) => handle.stopped));
  }

  close() {
    clearInterval(this.ticker);
    for (const handle of [...this.recorders]) this.drop(handle);
    if (this.audioContext) this.audioContext.close().catch(() => {});
    this.audioContext = this.analyser = null;
  }
}
