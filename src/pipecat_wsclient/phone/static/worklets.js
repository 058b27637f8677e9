// AudioWorklet processors of the browser phone (loaded with audioWorklet.addModule).
//
// "capture":  microphone -> 16-bit PCM chunks of `chunkSamples` samples at `rate`,
//             posted to the main thread as transferable ArrayBuffers.
// "playback": the bot's 16-bit PCM chunks from the main thread -> speakers,
//             through a small jitter buffer; reports what it actually played.
//
// Both take processorOptions {rate, chunkSamples}. The page normally creates
// its AudioContext at `rate` (the browser resamples mic and speakers); when a
// browser refuses that, the context runs at its own rate and these processors
// resample (linear interpolation, a light low-pass before decimating).

const JITTER_START_SECS = 0.04; // resume after an underrun once this much is queued...
const JITTER_WAIT_SECS = 0.06; // ...or once this long has passed since audio came back
const NOMINAL_CHUNK_SECS = 0.02; // the usual size of a message of bot audio
const SPEECH_GAP_SECS = 0.25; // audio arriving closer than this is one stretch of speech

function toInt16(v) {
  return Math.max(-32768, Math.min(32767, Math.round(v * 32768)));
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { rate, chunkSamples } = options.processorOptions;
    this.size = chunkSamples;
    this.step = sampleRate / rate; // input frames per output sample
    this.pos = 1; // next output's position, in input frames after `last`
    this.last = 0;
    // Two one-pole low-passes against aliasing when decimating (cut-off ~0.42 * rate).
    this.alpha = this.step > 1 ? 1 - Math.exp((-2 * Math.PI * 0.42 * rate) / sampleRate) : 1;
    this.lp1 = 0;
    this.lp2 = 0;
    this.chunk = new Int16Array(this.size);
    this.n = 0;
  }

  process(inputs) {
    // No input channel (the microphone stopped): keep the line going with silence.
    const channel = inputs[0] && inputs[0][0];
    const frames = channel ? channel.length : 128;
    for (let i = 0; i < frames; i++) {
      let x = channel ? channel[i] : 0;
      if (this.step === 1) {
        this.emit(x);
        continue;
      }
      if (this.alpha < 1) {
        this.lp1 += this.alpha * (x - this.lp1);
        this.lp2 += this.alpha * (this.lp1 - this.lp2);
        x = this.lp2;
      }
      while (this.pos <= 1) {
        this.emit(this.last + (x - this.last) * this.pos);
        this.pos += this.step;
      }
      this.pos -= 1;
      this.last = x;
    }
    return true;
  }

  emit(v) {
    this.chunk[this.n++] = toInt16(v);
    if (this.n === this.size) {
      this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
      this.chunk = new Int16Array(this.size);
      this.n = 0;
    }
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { rate, chunkSamples } = options.processorOptions;
    this.step = rate / sampleRate; // source samples per output frame
    this.startSamples = Math.round(rate * JITTER_START_SECS);
    this.nominalChunk = Math.round(rate * NOMINAL_CHUNK_SECS);
    this.target = this.startSamples; // what to queue before (re)starting, see onMessage

    // The queue: Int16Array chunks; `offset` into the first one.
    this.queue = [];
    this.offset = 0;
    this.queued = 0;
    this.playing = false; // false: outputting silence until enough is queued
    this.waitStart = 0; // audio time the first chunk after an underrun arrived
    this.lastArrival = -1; // audio time the latest chunk arrived
    this.dryArrival = null; // lastArrival when the queue ran dry while playing
    this.underruns = 0;
    this.flushed = 0;

    // Resampling state (only when the context does not run at `rate`).
    this.phase = 0;
    this.prev = 0;
    this.cur = 0;

    // What was played, reported in blocks of chunkSamples (silence included).
    this.block = new Int16Array(chunkSamples);
    this.n = 0;
    this.sumSquares = 0;
    this.peak = 0;

    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "push") {
      const pcm = new Int16Array(message.pcm);
      if (!pcm.length) return;
      const now = currentTime;
      // An underrun counts only inside speech: audio came back soon after the
      // chunk before the queue ran dry.
      if (this.dryArrival !== null && now - this.dryArrival < SPEECH_GAP_SECS) this.underruns++;
      this.dryArrival = null;
      if (!this.playing && this.queued === 0) this.waitStart = now;
      this.lastArrival = now;
      // 40 ms is one 20 ms message plus 20 ms of slack. When the server sends
      // bigger messages, queue one of them plus the same slack (the 60 ms
      // wait caps it), or the queue would run dry at the end of every message.
      this.target = Math.max(this.startSamples, pcm.length + this.startSamples - this.nominalChunk);
      this.queue.push(pcm);
      this.queued += pcm.length;
    } else if (message.type === "flush") {
      // Barge-in: drop what has not been played yet.
      const dropped = this.queued;
      this.queue = [];
      this.offset = 0;
      this.queued = 0;
      this.playing = false;
      this.dryArrival = null;
      this.flushed += dropped;
      this.port.postMessage({ type: "flushed", samples: dropped, total: this.flushed });
    }
  }

  // The next source sample (an Int16 value), 0 while buffering.
  next() {
    if (!this.playing && this.queued > 0 &&
        (this.queued >= this.target || currentTime - this.waitStart >= JITTER_WAIT_SECS)) {
      this.playing = true;
    }
    let s = 0;
    if (this.playing) {
      const head = this.queue[0];
      s = head[this.offset++];
      this.queued--;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
      if (this.queued === 0) {
        this.playing = false;
        this.dryArrival = this.lastArrival;
      }
    }
    this.record(s);
    return s;
  }

  record(s) {
    this.block[this.n++] = s;
    this.sumSquares += s * s;
    const a = Math.abs(s);
    if (a > this.peak) this.peak = a;
    if (this.n === this.block.length) {
      this.port.postMessage({
        type: "played",
        pcm: this.block.buffer,
        rms: Math.sqrt(this.sumSquares / this.n) / 32768,
        peak: this.peak / 32768,
        underruns: this.underruns,
        flushed: this.flushed,
      }, [this.block.buffer]);
      this.block = new Int16Array(this.n);
      this.n = 0;
      this.sumSquares = 0;
      this.peak = 0;
    }
  }

  process(inputs, outputs) {
    const channels = outputs[0];
    const out = channels[0];
    if (this.step === 1) {
      for (let i = 0; i < out.length; i++) out[i] = this.next() / 32768;
    } else {
      for (let i = 0; i < out.length; i++) {
        this.phase += this.step;
        while (this.phase >= 1) {
          this.phase -= 1;
          this.prev = this.cur;
          this.cur = this.next() / 32768;
        }
        out[i] = this.prev + (this.cur - this.prev) * this.phase;
      }
    }
    for (let c = 1; c < channels.length; c++) channels[c].set(out);
    return true;
  }
}

registerProcessor("capture", CaptureProcessor);
registerProcessor("playback", PlaybackProcessor);
