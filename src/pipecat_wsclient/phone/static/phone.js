// The browser phone: streams the microphone to the local phone server over a
// WebSocket (/call) and plays the bot's answer; shows the call's state, levels,
// turns, barge-ins and events, then the recording and timeline.
//
// Test hooks live on window.phone (see the `phone` object below).

(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  const DEFAULT_CONFIG = { protocol: "unknown", uri: "unknown", sample_rate: 8000, chunk_ms: 20 };
  const VOICE_DB = -40; // a chunk above this RMS is voiced
  const VOICE_GAP_MS = 500; // quiet needed before a voiced chunk is a new onset
  const HANGUP_WAIT_MS = 5000; // how long to wait for "ended" after hanging up
  const FAILED_WAIT_MS = 1000; // how long to wait for "ended" after a failed dial
  const RING_SECS = 30; // played audio kept for playedPcm()
  const FLOOR_DB = -120; // dB of digital silence (finite, so it survives JSON)
  const METER_MIN_DB = -60; // bottom of the level meters
  const METER_BARS = 150; // 3 s of 20 ms chunks
  const DIGITS = "0123456789*#ABCD";
  const TERMINAL = ["ended", "failed"];
  const STATE_LABELS = {
    idle: "Ready",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    ended: "Call ended",
    failed: "Call failed",
  };

  // The run's token, from this page's own address (no other site can read it):
  // every request to the phone server carries it (see withToken).
  const TOKEN = new URLSearchParams(location.search).get("token") || "";

  let config = null; // /config.json once loaded
  let call = null; // the call in progress (see dial()), null between calls
  let focusLost = false; // a focused button was disabled (see updateControls)

  // ---- Test hooks --------------------------------------------------------

  const phone = {
    state: "idle",
    error: null,
    muted: false,
    events: [], // event messages received from the server
    turns: [], // turn messages, one per n (the latest)
    bargeIns: [], // barge_in messages, one per n (the latest)
    stats: null, // the latest stats message
    summary: null,
    recordingUrl: null,
    timelineUrl: null,
    // How the bot's voice reaches the speakers: "webrtc" (through a WebRTC
    // connection inside the page, so the echo canceller removes it from the
    // microphone) or "webaudio" (straight, if that could not be set up).
    speaker: null,
    speakerBufferMs: null, // the WebRTC route's jitter buffer delay (mean, ms)
    mic: { chunksSent: 0, samplesSent: 0, peakDb: FLOOR_DB },
    bot: {
      chunksReceived: 0,
      samplesReceived: 0,
      samplesPlayed: 0,
      voicedSamplesPlayed: 0,
      peakDb: FLOOR_DB,
      underruns: 0,
      flushed: 0,
    },
    playedPcm,
    dial,
    hangup,
    press,
    setMuted,
  };
  window.phone = phone;

  // ---- Small helpers -----------------------------------------------------

  function describe(err) {
    if (err instanceof Error || (err && err.message)) {
      return err.name && err.name !== "Error" ? `${err.name}: ${err.message}` : err.message;
    }
    return String(err);
  }

  function toDb(linear) {
    return linear > 0 ? Math.max(FLOOR_DB, 20 * Math.log10(linear)) : FLOOR_DB;
  }

  // RMS and peak of Int16 PCM, in dBFS.
  function levels(pcm) {
    let sum = 0;
    let peak = 0;
    for (let i = 0; i < pcm.length; i++) {
      const s = pcm[i];
      sum += s * s;
      const a = s < 0 ? -s : s;
      if (a > peak) peak = a;
    }
    const rms = pcm.length ? Math.sqrt(sum / pcm.length) : 0;
    return { rmsDb: toDb(rms / 32768), peakDb: toDb(peak / 32768) };
  }

  // Seconds as mm:ss.s
  function clock(secs) {
    if (typeof secs !== "number" || !Number.isFinite(secs)) return "--:--.-";
    const tenths = Math.round(Math.max(0, secs) * 10);
    const m = Math.floor(tenths / 600);
    const s = (tenths % 600) / 10;
    return `${String(m).padStart(2, "0")}:${s.toFixed(1).padStart(4, "0")}`;
  }

  function ms(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return null;
    return value > 0 && value < 1 ? "<1 ms" : `${Math.round(value)} ms`;
  }

  function fmtDb(db) {
    return db <= METER_MIN_DB ? `< −${-METER_MIN_DB} dBFS` : `${db.toFixed(0).replace("-", "−")} dBFS`;
  }

  const sleep = (millis) => new Promise((resolve) => setTimeout(resolve, millis));

  // ---- State, errors, controls ---------------------------------------------

  function showError(message) {
    phone.error = message;
    $("error").textContent = message;
  }

  function clearError() {
    phone.error = null;
    $("error").textContent = "";
  }

  function setState(state, detail) {
    phone.state = state;
    const el = $("state");
    el.dataset.state = state;
    el.textContent = STATE_LABELS[state] || state;
    $("state-detail").textContent = detail || "";
    updateControls();
  }

  function keysEnabled() {
    return !!call && !call.done && !call.hungUp && phone.state === "connected";
  }

  function updateControls() {
    const before = document.activeElement; // (disabling a button may blur it at once)
    const inCall = !!call && !call.done;
    $("call").disabled = inCall;
    $("hangup").disabled = !inCall || call.hungUp;
    $("mute").disabled = !inCall || call.hungUp;
    const keys = keysEnabled();
    for (const key of document.querySelectorAll(".key")) key.disabled = !keys;
    // Do not strand keyboard focus on a button that just got disabled: move it
    // to Hang up or Call, now or as soon as one of them is enabled again.
    if (before && before.disabled) focusLost = true;
    const active = document.activeElement;
    if (focusLost && (!active || active === document.body || active.disabled)) {
      const target = [$("hangup"), $("call")].find((b) => !b.disabled);
      if (target) {
        target.focus();
        focusLost = false;
      }
    } else {
      focusLost = false;
    }
  }

  // ---- Configuration -------------------------------------------------------

  // A path of the phone server with the run's token added.
  function withToken(path) {
    return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}`;
  }

  async function loadConfig() {
    if (!TOKEN) throw new Error("this address has no token: open the one the phone command printed");
    let response;
    try {
      response = await fetch(withToken("/config.json"), { cache: "no-store" });
    } catch (err) {
      throw new Error(`could not reach the phone server (${describe(err)})`);
    }
    if (response.status === 403) {
      throw new Error("the phone server refused this page's token: open the address the phone command printed");
    }
    if (!response.ok) throw new Error(`/config.json answered HTTP ${response.status}`);
    const data = await response.json();
    const rate = Number(data.sample_rate);
    const chunk = Number(data.chunk_ms);
    if (!(rate >= 3000 && rate <= 96000) || !(chunk > 0 && chunk <= 1000)) {
      throw new Error(`/config.json has no usable sample_rate/chunk_ms (${rate}, ${chunk})`);
    }
    config = { ...DEFAULT_CONFIG, ...data, sample_rate: rate, chunk_ms: chunk };
    $("protocol").textContent = String(config.protocol);
    $("uri").textContent = String(config.uri);
    return config;
  }

  // The configuration for a call: loaded now if it could not be before.
  async function callConfig() {
    if (config) return config;
    try {
      return await loadConfig();
    } catch (err) {
      logLocal("info", `no configuration (${describe(err)}); using ${DEFAULT_CONFIG.sample_rate} Hz, ${DEFAULT_CONFIG.chunk_ms} ms`);
      return DEFAULT_CONFIG;
    }
  }

  // ---- Dialling --------------------------------------------------------------

  // Reset what the page shows and counts, for a fresh call.
  function resetForCall() {
    clearError();
    Object.assign(phone, {
      events: [], turns: [], bargeIns: [], stats: null, summary: null,
      recordingUrl: null, timelineUrl: null, speaker: null, speakerBufferMs: null,
    });
    Object.assign(phone.mic, { chunksSent: 0, samplesSent: 0, peakDb: FLOOR_DB });
    Object.assign(phone.bot, {
      chunksReceived: 0, samplesReceived: 0, samplesPlayed: 0, voicedSamplesPlayed: 0,
      peakDb: FLOOR_DB, underruns: 0, flushed: 0,
    });
    ring.len = 0;
    ring.pos = 0;
    for (const { table, empty } of Object.values(MEASURES)) clearTable(table, empty);
    $("log").textContent = "";
    $("result").hidden = true;
    $("stats").textContent = "Elapsed 00:00.0 · RTT —";
    meters.mic.reset();
    meters.bot.reset();
    applyMuted(false);
  }

  async function dial() {
    if (call) return false; // one call at a time
    const c = {
      ws: null, ctx: null, stream: null, capture: null, playback: null, loopback: null, speaker: null,
      rate: 0, chunkSamples: 0, chunkMs: 0,
      opened: false, ended: false, hungUp: false, closing: false, done: false,
      timer: 0, t0: 0, quietMs: VOICE_GAP_MS, lastReadout: 0,
    };
    call = c;
    resetForCall();
    setState("connecting", "starting the microphone");
    try {
      const cfg = await callConfig();
      c.rate = cfg.sample_rate;
      c.chunkMs = cfg.chunk_ms;
      c.chunkSamples = Math.round((cfg.sample_rate * cfg.chunk_ms) / 1000);
      c.stream = await openMicrophone();
      if (c.done) return release(c); // hung up while the browser asked for the microphone
      await startAudio(c);
      if (c.done) return release(c);
      openSocket(c);
      return true;
    } catch (err) {
      if (!c.done) {
        showError(err.userMessage || `Could not start the call: ${describe(err)}`);
        setState("failed", "no call was made");
        finish(c);
      }
      return false;
    }
  }

  async function openMicrophone() {
    const fail = (words) => Object.assign(new Error(words), { userMessage: `Microphone blocked: ${words}` });
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw fail("this browser gives no microphone to this page (it needs http://127.0.0.1 or https)");
    }
    try {
      // Echo cancellation is a must: the bot must not hear itself through the speakers.
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
    } catch (err) {
      const reasons = {
        NotAllowedError: "permission was denied. Allow the microphone for this page and try again.",
        SecurityError: "the browser does not allow a microphone here.",
        NotFoundError: "no microphone was found.",
        NotReadableError: "the microphone could not be opened (is another program using it?).",
        OverconstrainedError: "no microphone fits the settings asked for.",
        AbortError: "opening the microphone was aborted.",
      };
      throw fail(reasons[err && err.name] ? `${reasons[err.name]} (${describe(err)})` : describe(err));
    }
  }

  // The audio graph: mic -> capture worklet; playback worklet -> speakers.
  async function startAudio(c) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context || !window.AudioWorkletNode) throw new Error("this browser has no AudioWorklet support");
    let source;
    try {
      c.ctx = new Context({ sampleRate: c.rate, latencyHint: "interactive" });
      source = c.ctx.createMediaStreamSource(c.stream);
    } catch (err) {
      // Some browsers (Firefox) cannot connect a microphone to a context at
      // another rate: run at the device's rate and let the worklets resample.
      if (c.ctx) c.ctx.close().catch(() => {});
      c.ctx = new Context({ latencyHint: "interactive" });
      source = c.ctx.createMediaStreamSource(c.stream);
    }
    const ctx = c.ctx;
    await ctx.audioWorklet.addModule("worklets.js");
    if (c.done) return;
    const processorOptions = { rate: c.rate, chunkSamples: c.chunkSamples };
    c.capture = new AudioWorkletNode(ctx, "capture", {
      numberOfInputs: 1, numberOfOutputs: 0,
      channelCount: 1, channelCountMode: "explicit", channelInterpretation: "speakers",
      processorOptions,
    });
    c.playback = new AudioWorkletNode(ctx, "playback", {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1], processorOptions,
    });
    c.capture.port.onmessage = (event) => guarded(() => onMicChunk(c, event.data));
    c.playback.port.onmessage = (event) => guarded(() => onPlayed(c, event.data));
    const processorFailed = () => {
      if (call === c) showError("The audio processing stopped with an error; hang up and call again.");
    };
    c.capture.onprocessorerror = processorFailed;
    c.playback.onprocessorerror = processorFailed;
    source.connect(c.capture);
    await routeSpeaker(c);
    if (c.done) return;

    ctx.onstatechange = () => {
      if (call === c) $("notice").hidden = ctx.state !== "suspended";
    };
    if (ctx.state === "suspended") {
      // Autoplay policy: resume() may wait for a click forever, so do not wait long.
      await Promise.race([ctx.resume().catch(() => {}), sleep(500)]);
    }
    $("notice").hidden = ctx.state !== "suspended";
  }

  // The call's socket (shown without its token; opened with it).
  function socketUrl() {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/call`;
  }

  function openSocket(c) {
    const url = withToken(socketUrl());
    setState("connecting", "dialling the bot");
    const ws = new WebSocket(url);
    c.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      c.opened = true;
      c.t0 = performance.now();
    };
    ws.onmessage = (event) => guarded(() => onServerMessage(c, event.data));
    ws.onclose = (event) => guarded(() => onSocketClosed(c, event.code, event.reason));
    // onerror carries no details; onclose follows it and reports.
  }

  // Run a handler; whatever it throws ends up in #error.
  function guarded(fn) {
    try {
      fn();
    } catch (err) {
      showError(`Something went wrong: ${describe(err)}`);
    }
  }

  function canSend(c) {
    return call === c && !c.done && !c.hungUp && c.ws && c.ws.readyState === WebSocket.OPEN &&
      !TERMINAL.includes(phone.state);
  }

  function send(c, message) {
    if (!canSend(c)) return false;
    c.ws.send(JSON.stringify(message));
    return true;
  }

  // ---- Microphone ------------------------------------------------------------

  function onMicChunk(c, buffer) {
    if (call !== c || c.done) return;
    const received = Date.now();
    const captured = new Int16Array(buffer);
    const heard = levels(captured);
    meters.mic.push(heard.rmsDb);
    if (!canSend(c)) return;

    // A phone line never stops: when muted, send silence of the same size.
    const pcm = phone.muted ? new Int16Array(captured.length) : captured;
    const sent = phone.muted ? { rmsDb: FLOOR_DB, peakDb: FLOOR_DB } : heard;
    c.ws.send(pcm.buffer);
    phone.mic.chunksSent++;
    phone.mic.samplesSent += pcm.length;
    phone.mic.peakDb = Math.max(phone.mic.peakDb, sent.peakDb);

    // Voice onset: a voiced chunk after at least VOICE_GAP_MS of quiet ones.
    if (sent.rmsDb > VOICE_DB) {
      if (c.quietMs >= VOICE_GAP_MS) send(c, { type: "voice", at_ms: received - c.chunkMs });
      c.quietMs = 0;
    } else {
      c.quietMs += c.chunkMs;
    }
  }

  // ---- Bot audio -------------------------------------------------------------

  // Played audio ring buffer (Int16 at the call's rate), for playedPcm().
  const ring = { buf: new Int16Array(0), pos: 0, len: 0 };

  function ringPush(pcm) {
    const cap = ring.buf.length;
    for (let i = 0; i < pcm.length; i++) {
      ring.buf[ring.pos] = pcm[i];
      ring.pos = (ring.pos + 1) % cap;
    }
    ring.len = Math.min(cap, ring.len + pcm.length);
  }

  // Base64 of the last (up to RING_SECS) 16-bit LE PCM actually played.
  function playedPcm() {
    const cap = ring.buf.length;
    const n = ring.len;
    const bytes = new Uint8Array(n * 2);
    const view = new DataView(bytes.buffer);
    const start = (ring.pos - n + cap) % (cap || 1);
    for (let i = 0; i < n; i++) view.setInt16(2 * i, ring.buf[(start + i) % cap], true);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function onBotAudio(c, data) {
    const samples = data.byteLength >> 1;
    if (!samples || !c.playback) return;
    const pcm = data.byteLength & 1 ? data.slice(0, samples * 2) : data;
    phone.bot.chunksReceived++;
    phone.bot.samplesReceived += samples;
    c.playback.port.postMessage({ type: "push", pcm }, [pcm]);
  }

  // Reports from the playback worklet: each block it played, and flushes.
  function onPlayed(c, message) {
    if (call !== c) return;
    const bot = phone.bot;
    if (message.type === "played") {
      const pcm = new Int16Array(message.pcm);
      const rmsDb = toDb(message.rms);
      bot.samplesPlayed += pcm.length;
      if (rmsDb > VOICE_DB) bot.voicedSamplesPlayed += pcm.length;
      bot.peakDb = Math.max(bot.peakDb, toDb(message.peak));
      bot.underruns = message.underruns;
      bot.flushed = message.flushed;
      if (ring.buf.length !== RING_SECS * c.rate) {
        ring.buf = new Int16Array(RING_SECS * c.rate);
        ring.pos = 0;
        ring.len = 0;
      }
      ringPush(pcm);
      meters.bot.push(rmsDb);
    } else if (message.type === "flushed") {
      bot.flushed = message.total;
    }
  }

  // ---- Server messages -------------------------------------------------------

  // The numbered measures the server reports (a message per turn or barge-in,
  // sent again when it changes): the list on window.phone that keeps the latest
  // of each number, the table that shows them, and a row's cells.
  const MEASURES = {
    turn: {
      list: "turns",
      table: "turns",
      empty: "No turns yet.",
      cells: (m) => [String(m.n), clock(m.utterance_end_s), ms(m.latency_ms) || "no answer"],
    },
    barge_in: {
      list: "bargeIns",
      table: "barge-ins",
      empty: "No barge-ins yet.",
      cells: (m) => [
        String(m.n), clock(m.onset_s), ms(m.reaction_ms) || "—", ms(m.clear_ms) || "no clear",
      ],
    },
  };

  function onServerMessage(c, data) {
    if (call !== c || c.done) return;
    if (data instanceof ArrayBuffer) {
      onBotAudio(c, data);
      return;
    }
    let m;
    try {
      m = JSON.parse(data);
    } catch (err) {
      showError(`The phone server sent a message that is not JSON: ${String(data).slice(0, 60)}`);
      return;
    }
    switch (m && m.type) {
      case "state":
        setState(m.state, m.detail);
        if (m.state === "failed") {
          showError(m.detail || "The call failed.");
          // Back to idle now: the microphone released, Call enabled once the
          // server's "ended" comes (or after a short wait without it).
          release(c);
          clearTimeout(c.timer);
          c.timer = setTimeout(() => closeSocket(c), FAILED_WAIT_MS);
        }
        break;
      case "turn":
      case "barge_in": {
        const measure = MEASURES[m.type];
        upsert(phone[measure.list], m);
        renderRow(measure.table, m.n, measure.cells(m));
        break;
      }
      case "event":
        phone.events.push(m);
        if (m.kind === "clear" && c.playback) c.playback.port.postMessage({ type: "flush" });
        logEvent(m.kind, m.detail, m.at_s, false);
        break;
      case "stats":
        phone.stats = m;
        renderStats(m);
        measureSpeakerRoute(c);
        break;
      case "ended":
        onEnded(c, m);
        break;
      default:
        break; // a newer server's message: nothing to show
    }
  }

  function onEnded(c, m) {
    c.ended = true;
    phone.summary = m.summary || null;
    phone.recordingUrl = m.recording ? withToken(m.recording) : null;
    phone.timelineUrl = m.timeline ? withToken(m.timeline) : null;
    if (!TERMINAL.includes(phone.state)) setState("ended", "");
    showResult(m);
    // The server closes the socket now; close it ourselves if it does not
    // (at once after a failed call: nothing more is coming).
    clearTimeout(c.timer);
    if (phone.state === "failed") closeSocket(c);
    else c.timer = setTimeout(() => closeSocket(c), HANGUP_WAIT_MS);
  }

  function onSocketClosed(c, code, reason) {
    if (c.done) return;
    if (!c.opened && !c.closing) {
      showError(`Could not reach the phone server at ${socketUrl()} (connection closed, code ${code}).`);
      setState("failed", "could not reach the phone server");
    } else if (!c.ended) {
      if (!TERMINAL.includes(phone.state)) setState("ended", c.hungUp ? "you hung up" : "the connection closed");
      if (!c.closing && code !== 1000 && !phone.error) {
        showError(`Lost the connection to the phone server (code ${code}${reason ? `: ${reason}` : ""}).`);
      }
    }
    finish(c);
  }

  // Close the socket from our side (no "ended" came in time) and finish.
  function closeSocket(c) {
    if (c.done) return;
    c.closing = true;
    if (c.ws) {
      c.ws.onclose = null;
      c.ws.close(1000, "hung up");
    }
    onSocketClosed(c, 1000, "");
  }

  // The end of a call: release the microphone and audio; idempotent.
  // Chrome's echo canceller removes from the microphone the audio of WebRTC
  // calls (and, where "Chrome-wide echo cancellation" has shipped, whatever
  // the tab plays; not on every platform). So that the bot never hears itself
  // through the speakers, its voice takes a WebRTC call's route: from the
  // playback worklet into a WebRTC connection inside this page (two peer
  // connections on this machine, nothing leaves it), then out of an <audio>
  // element. If that cannot be set up in 3 s, the voice plays straight from
  // Web Audio and the page says that echo cancellation may not cover it
  // (?speaker=webaudio in the page's address asks for that: with headphones).
  async function routeSpeaker(c) {
    const ctx = c.ctx;
    const direct = (why) => {
      c.playback.connect(ctx.destination);
      phone.speaker = "webaudio";
      logLocal("info", `the bot's voice plays without the WebRTC route (${why}): ` +
        "use headphones if the bot hears itself");
    };
    if (new URLSearchParams(location.search).get("speaker") === "webaudio") {
      return direct("?speaker=webaudio");
    }
    if (!window.RTCPeerConnection || !ctx.createMediaStreamDestination) {
      return direct("this browser has no WebRTC");
    }
    const sink = ctx.createMediaStreamDestination();
    c.playback.connect(sink);
    const [a, b] = [new RTCPeerConnection(), new RTCPeerConnection()];
    c.loopback = [a, b];
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate).catch(() => {});
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate).catch(() => {});
    const received = new Promise((resolve) => { b.ontrack = (e) => resolve(e.track); });
    const connected = new Promise((resolve) => {
      const check = () => { if (b.connectionState === "connected") resolve(); };
      b.onconnectionstatechange = check;
    });
    try {
      for (const track of sink.stream.getAudioTracks()) a.addTrack(track, sink.stream);
      await a.setLocalDescription();
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription();
      await a.setRemoteDescription(b.localDescription);
      const track = await Promise.race([
        Promise.all([received, connected]).then(([t]) => t),
        sleep(3000).then(() => null),
      ]);
      if (!track) throw new Error("the connection inside the page did not open in 3 s");
      c.speaker = new Audio();
      c.speaker.srcObject = new MediaStream([track]);
      await c.speaker.play();
      phone.speaker = "webrtc";
    } catch (err) {
      closeLoopback(c);
      c.playback.disconnect(sink);
      direct(describe(err));
    }
  }

  // What the WebRTC route to the speakers costs: its receiver's jitter buffer
  // (the mean delay of the audio it played), shown with the stats.
  function measureSpeakerRoute(c) {
    if (!c.loopback) return;
    c.loopback[1].getStats().then((report) => {
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio" && s.jitterBufferEmittedCount) {
          phone.speakerBufferMs = (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
        }
      });
    }).catch(() => {});
  }

  function closeLoopback(c) {
    if (c.speaker) {
      c.speaker.pause();
      c.speaker.srcObject = null;
      c.speaker = null;
    }
    for (const pc of c.loopback || []) pc.close();
    c.loopback = null;
  }

  function finish(c) {
    if (c.done) return;
    c.done = true;
    clearTimeout(c.timer);
    if (c.ws && c.ws.readyState <= WebSocket.OPEN) {
      c.ws.onclose = null;
      c.ws.close(1000);
    }
    release(c);
    if (call === c) call = null;
    $("notice").hidden = true;
    updateControls();
  }

  // Stop the microphone and close the audio context (also after a cancelled start).
  function release(c) {
    closeLoopback(c);
    if (c.stream) for (const track of c.stream.getTracks()) track.stop();
    if (c.ctx && c.ctx.state !== "closed") c.ctx.close().catch(() => {});
    return false;
  }

  // ---- User actions ----------------------------------------------------------

  function hangup() {
    const c = call;
    if (!c || c.done || c.hungUp) return false;
    if (c.ws && c.ws.readyState === WebSocket.OPEN) {
      c.ws.send(JSON.stringify({ type: "hangup" }));
      c.hungUp = true;
      $("state-detail").textContent = "hanging up…";
      // Keep the socket open for "ended"; give up after a while.
      c.timer = setTimeout(() => closeSocket(c), HANGUP_WAIT_MS);
      updateControls();
    } else {
      // Not connected yet: just stop.
      c.hungUp = true;
      c.closing = true;
      setState("ended", "you hung up");
      finish(c);
    }
    return true;
  }

  function press(digit) {
    const d = String(digit).toUpperCase();
    if (d.length !== 1 || !DIGITS.includes(d) || !keysEnabled()) return false;
    if (!send(call, { type: "dtmf", digit: d })) return false;
    logLocal("dtmf", `you pressed ${d}`);
    const key = document.querySelector(`.key[data-digit="${CSS.escape(d)}"]`);
    if (key) {
      key.classList.add("pressed");
      setTimeout(() => key.classList.remove("pressed"), 150);
    }
    return true;
  }

  function applyMuted(muted) {
    phone.muted = muted;
    const button = $("mute");
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? "Unmute" : "Mute";
  }

  function setMuted(muted) {
    const m = !!muted;
    if (!call || call.done || m === phone.muted) return false;
    applyMuted(m);
    send(call, { type: "mute", muted: m });
    logLocal("info", m ? "you muted the microphone" : "you unmuted the microphone");
    return true;
  }

  // ---- Rendering ---------------------------------------------------------------

  function upsert(list, message) {
    const i = list.findIndex((item) => item.n === message.n);
    if (i >= 0) list[i] = message;
    else list.push(message);
  }

  function clearTable(id, emptyText) {
    const tbody = $(id).tBodies[0];
    tbody.textContent = "";
    const row = tbody.insertRow();
    row.className = "empty";
    const cell = row.insertCell();
    cell.colSpan = $(id).tHead.rows[0].cells.length;
    cell.textContent = emptyText;
  }

  // Add or update the row for number n, keeping rows in order of n.
  function renderRow(id, n, cells) {
    const tbody = $(id).tBodies[0];
    for (const empty of tbody.querySelectorAll("tr.empty")) empty.remove();
    let row = tbody.querySelector(`tr[data-n="${CSS.escape(String(n))}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.n = String(n);
      const after = [...tbody.rows].find((r) => Number(r.dataset.n) > Number(n));
      tbody.insertBefore(row, after || null);
    }
    row.textContent = "";
    cells.forEach((text, i) => {
      const cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) cell.scope = "row";
      cell.textContent = text;
      if (/^(no |—)/.test(text)) cell.className = "none";
      row.appendChild(cell);
    });
  }

  function logEvent(kind, detail, atSecs, local) {
    const log = $("log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    const item = document.createElement("li");
    if (local) item.className = "local";
    const time = document.createElement("time");
    time.textContent = clock(atSecs);
    const kindEl = document.createElement("span");
    kindEl.className = "kind";
    kindEl.textContent = kind || "event";
    const detailEl = document.createElement("span");
    detailEl.className = "detail";
    detailEl.textContent = detail || "";
    item.append(time, kindEl, detailEl);
    log.appendChild(item);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  // Something the page did (not a server event): the log only.
  function logLocal(kind, detail) {
    const c = call;
    const at = c && c.opened ? (performance.now() - c.t0) / 1000 : 0;
    logEvent(kind, detail, at, true);
  }

  function renderStats(m) {
    const parts = [`Elapsed ${clock(m.elapsed_s)}`, `RTT ${ms(m.rtt_ms) || "—"}`];
    if (typeof m.sent_secs === "number") parts.push(`sent ${m.sent_secs.toFixed(1)} s`);
    if (typeof m.heard_secs === "number") parts.push(`heard ${m.heard_secs.toFixed(1)} s`);
    if (phone.speakerBufferMs !== null) {
      parts.push(`speaker route ${Math.round(phone.speakerBufferMs)} ms`);
    }
    const server = typeof m.underruns === "number" ? `${m.underruns} (server), ` : "";
    parts.push(`underruns ${server}${phone.bot.underruns} (playback)`);
    $("stats").textContent = parts.join(" · ");
  }

  const SUMMARY_FIELDS = [
    ["duration_secs", "Duration", (v) => clock(v)],
    ["connect_ms", "Connect time", ms],
    ["turns", "Turns", (v) => String(Array.isArray(v) ? v.length : v)],
    ["latency_p50_ms", "Response latency (median)", ms],
    ["latency_p95_ms", "Response latency (95th percentile)", ms],
    ["first_answer_ms", "First answer after", ms],
    ["barge_ins", "Barge-ins", (v) => String(Array.isArray(v) ? v.length : v)],
    ["underruns", "Underruns", String],
    ["reconnects", "Reconnects", String],
    ["error", "Error", String],
  ];

  // The carrier's rules the bot broke: a row per kind, with its count, the
  // carrier's code and the first example (the bot's words: shown as text).
  function carrierRows(errors) {
    if (!errors || typeof errors !== "object") return [];
    return Object.entries(errors).map(([kind, found]) => {
      const f = found || {};
      const code = f.code ? `, carrier code ${f.code}` : "";
      return [`Carrier rule broken: ${kind}`, `${f.count}×${code}; first: ${f.example}`];
    });
  }

  function showResult(m) {
    const summary = $("summary");
    summary.textContent = "";
    const s = m.summary || {};
    const rows = [];
    for (const [key, label, format] of SUMMARY_FIELDS) {
      if (!(key in s)) continue;
      const value = s[key] === null || s[key] === undefined ? null : format(s[key]);
      if (key === "error" && value === null) continue;
      rows.push([label, value === null ? "—" : value]);
    }
    for (const [label, value] of [...rows, ...carrierRows(s.carrier_errors)]) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      summary.append(dt, dd);
    }
    const link = (id, url) => {
      const a = $(id);
      a.hidden = !url;
      if (url) a.href = url;
      else a.removeAttribute("href");
    };
    link("download-recording", phone.recordingUrl);
    link("download-timeline", phone.timelineUrl);
    const img = $("timeline");
    const caption = $("timeline-caption");
    if (phone.timelineUrl) {
      img.hidden = false;
      img.onerror = () => { caption.textContent = "The timeline image could not be loaded."; };
      caption.textContent = "Timeline of the call.";
      img.src = phone.timelineUrl;
    } else {
      img.hidden = true;
      img.removeAttribute("src");
      caption.textContent = "No timeline was made for this call.";
    }
    $("result").hidden = false;
  }

  // ---- Level meters ------------------------------------------------------------

  // One side's meter: its label, its bars (a canvas) and its level in dBFS.
  // `side` names its ids (level-SIDE, level-SIDE-label, level-SIDE-db) and its
  // colour (--SIDE); `element` is its row, for the page to place.
  class Meter {
    constructor(side, label) {
      this.element = document.createElement("div");
      this.element.className = "meter";
      this.element.innerHTML =
        `<span class="meter-label" id="level-${side}-label">${label}</span>` +
        `<canvas id="level-${side}" class="meter-canvas" role="img"` +
        ` aria-labelledby="level-${side}-label" aria-describedby="level-${side}-db"></canvas>` +
        `<span class="meter-db" id="level-${side}-db"></span>`;
      this.canvas = this.element.querySelector("canvas");
      this.readout = this.element.querySelector(".meter-db");
      this.colorVar = side;
      this.history = new Float32Array(METER_BARS);
      this.reset();
    }

    reset() {
      this.history.fill(FLOOR_DB);
      this.index = 0;
      this.latest = null;
      this.lastText = 0;
      this.readout.textContent = "— dBFS";
      this.dirty = true;
    }

    push(db) {
      this.history[this.index] = db;
      this.index = (this.index + 1) % METER_BARS;
      this.latest = db;
      this.dirty = true;
    }

    draw(colors, now) {
      if (this.latest !== null && now - this.lastText > 150) {
        this.readout.textContent = fmtDb(this.latest) + (this === meters.mic && phone.muted ? " (muted)" : "");
        this.lastText = now;
      }
      if (!this.dirty) return;
      this.dirty = false;
      const canvas = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
      const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      const g = canvas.getContext("2d");
      g.clearRect(0, 0, w, h);
      const height = (db) => Math.min(1, Math.max(0, (db - METER_MIN_DB) / -METER_MIN_DB)) * h;
      // Bars, oldest on the left, mirrored around the middle like a waveform.
      g.fillStyle = colors[this.colorVar];
      const barW = w / METER_BARS;
      for (let i = 0; i < METER_BARS; i++) {
        const bar = Math.max(dpr, height(this.history[(this.index + i) % METER_BARS]));
        g.fillRect(i * barW, (h - bar) / 2, Math.max(1, barW - dpr * 0.5), bar);
      }
      // The voice threshold.
      const y = height(VOICE_DB) / 2;
      g.strokeStyle = colors.grid;
      g.lineWidth = dpr;
      g.setLineDash([4 * dpr, 4 * dpr]);
      g.beginPath();
      g.moveTo(0, h / 2 - y);
      g.lineTo(w, h / 2 - y);
      g.moveTo(0, h / 2 + y);
      g.lineTo(w, h / 2 + y);
      g.stroke();
    }
  }

  const meters = { mic: new Meter("mic", "You"), bot: new Meter("bot", "Bot") };
  $("levels-heading").after(meters.mic.element, meters.bot.element);

  function themeColors() {
    const style = getComputedStyle(document.documentElement);
    const get = (name) => style.getPropertyValue(`--${name}`).trim() || "#888";
    return { mic: get("mic"), bot: get("bot"), grid: get("grid") };
  }

  let colors = null;
  function animate(now) {
    if (!colors) colors = themeColors();
    meters.mic.draw(colors, now);
    meters.bot.draw(colors, now);
    requestAnimationFrame(animate);
  }

  // ---- Wiring ------------------------------------------------------------------

  // Button handlers: whatever they throw, or their promise rejects with, is shown.
  function onClick(id, handler) {
    $(id).addEventListener("click", (event) => {
      try {
        Promise.resolve(handler(event)).catch((err) => showError(`Something went wrong: ${describe(err)}`));
      } catch (err) {
        showError(`Something went wrong: ${describe(err)}`);
      }
    });
  }

  function init() {
    onClick("call", () => dial());
    onClick("hangup", () => hangup());
    onClick("mute", () => setMuted(!phone.muted));
    onClick("resume-audio", () => (call && call.ctx ? call.ctx.resume() : undefined));
    $("main").querySelector(".keypad").addEventListener("click", (event) => {
      const key = event.target.closest(".key");
      if (key && !key.disabled) guarded(() => press(key.dataset.digit));
    });
    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
      if (!/^[0-9*#]$/.test(event.key)) return;
      const t = event.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      guarded(() => {
        if (press(event.key)) event.preventDefault();
      });
    });
    window.addEventListener("error", (event) => showError(`Something went wrong: ${event.message}`));
    window.addEventListener("unhandledrejection", (event) => showError(`Something went wrong: ${describe(event.reason)}`));
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      colors = null;
      meters.mic.dirty = meters.bot.dirty = true;
    });
    window.addEventListener("resize", () => { meters.mic.dirty = meters.bot.dirty = true; });
    requestAnimationFrame(animate);

    // ?call=1 dials at once, but only once the server has taken this page's token.
    const autoDial = new URLSearchParams(location.search).get("call") === "1";
    loadConfig()
      .then(() => (autoDial ? dial() : undefined))
      .catch((err) => {
        $("protocol").textContent = $("uri").textContent = "unknown";
        showError(`Could not load the phone's configuration: ${describe(err)}`);
      });
  }

  init();
})();
