// AudioWorklet processor: microphone audio at the context's rate → 16 kHz mono pcm_s16le frames.
//
// Runs on the audio rendering thread. Resampling is a windowed-sinc low-pass interpolator, so a
// 44.1 or 48 kHz microphone does not alias into the speech band. Every `frameMs` of output it
// posts one ArrayBuffer (transferred, not copied) plus the frame's peak level for the meter.

const TARGET_RATE = 16000;
const ZERO_CROSSINGS = 12; // kernel half-width, in output-rate samples
const TABLE_PHASES = 256; // precomputed kernel resolution between input samples

class SincResampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate; // input samples per output sample
    this.passthrough = inRate === outRate;
    // Cut-off as a fraction of the input Nyquist, a little under the output Nyquist.
    this.cutoff = Math.min(1, outRate / inRate) * 0.92;
    this.halfWidth = Math.ceil(ZERO_CROSSINGS / this.cutoff);
    this.table = this.buildTable();
    this.buffer = new Float32Array(4096);
    this.length = this.halfWidth; // leading zeros: the first output sample is centred on input 0
    this.position = this.halfWidth;
  }

  buildTable() {
    // table[phase * taps + k] = h(frac + halfWidth - 1 - k) for frac = phase / TABLE_PHASES.
    const taps = 2 * this.halfWidth;
    const table = new Float32Array((TABLE_PHASES + 1) * taps);
    for (let phase = 0; phase <= TABLE_PHASES; phase++) {
      const frac = phase / TABLE_PHASES;
      for (let k = 0; k < taps; k++) {
        const x = frac + this.halfWidth - 1 - k; // distance from tap to the output instant
        const arg = Math.PI * this.cutoff * x;
        const sinc = x === 0 ? 1 : Math.sin(arg) / arg;
        const w = Math.abs(x) >= this.halfWidth ? 0 : 0.5 + 0.5 * Math.cos((Math.PI * x) / this.halfWidth);
        table[phase * taps + k] = this.cutoff * sinc * w;
      }
    }
    return table;
  }

  push(input) {
    if (this.passthrough) return Float32Array.from(input);
    if (this.length + input.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(this.buffer.length * 2, this.length + input.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;

    const taps = 2 * this.halfWidth;
    const out = [];
    while (this.position + this.halfWidth < this.length) {
      const base = Math.floor(this.position);
      const phase = Math.round((this.position - base) * TABLE_PHASES);
      const first = base - this.halfWidth + 1;
      const row = phase * taps;
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += this.buffer[first + k] * this.table[row + k];
      out.push(acc);
      this.position += this.step;
    }
    // Drop input no future output sample needs.
    const keepFrom = Math.max(0, Math.floor(this.position) - this.halfWidth);
    if (keepFrom > 0) {
      this.buffer.copyWithin(0, keepFrom, this.length);
      this.length -= keepFrom;
      this.position -= keepFrom;
    }
    return Float32Array.from(out);
  }
}

class PcmFramer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = (options.processorOptions && options.processorOptions.frameMs) || 100;
    this.frameSamples = Math.round((TARGET_RATE * frameMs) / 1000);
    this.resampler = new SincResampler(sampleRate, TARGET_RATE);
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    let mono = input[0];
    if (input.length > 1) {
      mono = new Float32Array(input[0].length);
      for (const channel of input) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
    }
    const samples = this.resampler.push(mono);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      this.peak = Math.max(this.peak, Math.abs(s));
      this.frame[this.filled++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
      if (this.filled === this.frameSamples) {
        const buffer = this.frame.buffer;
        this.port.postMessage({ pcm: buffer, peak: this.peak }, [buffer]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-framer", PcmFramer);
