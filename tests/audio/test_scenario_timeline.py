"""Voice activity on a playback timeline (scenario.timeline), on synthetic PCM.

"Speech" is a 440 Hz tone at -10 dBFS, silence is zeros, 16-bit mono at
16000 Hz. Times are the playback times passed to ``add``; ``now`` is passed
in, so no clock is involved.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget import budget
from pipecat_wsclient.audio.activity import SentTimes, VoiceActivity, voiced_span
from pipecat_wsclient.audio.wav import float_to_pcm

RATE = 16000
WINDOW = 0.02
WINDOW_BYTES = 2 * int(RATE * WINDOW)
AMPLITUDE = math.sqrt(2) * 10 ** (-10 / 20)  # a sine's RMS at -10 dBFS


def tone(ms: float) -> bytes:
    n = round(RATE * ms / 1000)
    return float_to_pcm(AMPLITUDE * np.sin(2 * np.pi * 440 * np.arange(n) / RATE))


def silence(ms: float) -> bytes:
    return bytes(2 * round(RATE * ms / 1000))


def secs(pcm: bytes) -> float:
    return len(pcm) / (2 * RATE)


def test_the_tone_is_at_minus_10_dbfs() -> None:
    samples = np.frombuffer(tone(1000), "<i2") / 32768
    assert 20 * math.log10(np.sqrt(np.mean(samples**2))) == pytest.approx(-10, abs=0.05)


@pytest.mark.parametrize("tone_at_ms", [500, 507, 519, 520, 1333])
def test_onset_of_a_tone_within_one_window(tone_at_ms: int) -> None:
    heard = VoiceActivity(RATE)
    start = 10.0
    heard.add(silence(tone_at_ms) + tone(300) + silence(400), start=start)
    true_onset = start + tone_at_ms / 1000
    onset = heard.onset_after(start)
    assert onset is not None
    assert abs(onset - true_onset) < WINDOW
    assert heard.onset_after(start, until=true_onset - WINDOW) is None
    assert heard.onset_after(onset + 0.4) is None  # nothing after the tone


def test_onset_after_a_time_skips_earlier_speech() -> None:
    heard = VoiceActivity(RATE)
    heard.add(tone(200) + silence(500) + tone(200) + silence(200), start=0.0)
    assert heard.onset_after(0.0) == pytest.approx(0.0)
    assert heard.onset_after(0.3) == pytest.approx(0.7)


def test_end_of_run_waits_for_the_silence_then_gives_the_tones_end() -> None:
    heard = VoiceActivity(RATE)
    heard.add(silence(500) + tone(300), start=0.0)
    onset = heard.onset_after(0.0)
    assert onset == pytest.approx(0.5)
    silence_secs = 0.3
    tone_end = 0.8
    # The tone is still playing, then silence has not lasted long enough.
    for now in (0.6, 0.8, 0.9, 1.09):
        assert heard.end_of_run(onset, silence_secs, now=now) is None
    heard.add(silence(400), start=0.8)
    assert heard.end_of_run(onset, silence_secs, now=1.09) is None
    end = heard.end_of_run(onset, silence_secs, now=1.1)
    assert end is not None and abs(end - tone_end) <= WINDOW
    # Asked from inside the run, or just before it: the same end.
    assert heard.end_of_run(0.65, silence_secs, now=1.2) == end
    assert heard.end_of_run(0.49, silence_secs, now=1.2) == end


def test_end_of_run_is_none_without_speech_after_t() -> None:
    heard = VoiceActivity(RATE)
    assert heard.end_of_run(0.0, 0.3, now=100.0) is None
    heard.add(tone(200) + silence(800), start=0.0)
    assert heard.end_of_run(0.5, 0.3, now=100.0) is None


@pytest.mark.parametrize(("pause_ms", "joined"), [(100, True), (200, True), (400, False)])
def test_pauses_shorter_than_silence_join_runs(pause_ms: int, joined: bool) -> None:
    heard = VoiceActivity(RATE)
    heard.add(tone(300) + silence(pause_ms) + tone(300) + silence(1000), start=0.0)
    end = heard.end_of_run(0.0, silence=0.3, now=10.0)
    second_end = 0.6 + pause_ms / 1000
    assert end == pytest.approx(second_end if joined else 0.3)


def test_chunks_of_odd_sizes_give_the_same_windows_as_one_chunk() -> None:
    pcm = silence(130) + tone(250) + silence(90) + tone(47) + silence(300) + tone(101)
    whole = VoiceActivity(RATE)
    whole.add(pcm, start=2.0)
    chunked = VoiceActivity(RATE)
    step = 2 * round(RATE * 0.007)  # 7 ms
    for offset in range(0, len(pcm), step):
        chunked.add(pcm[offset : offset + step], start=2.0 + offset / (2 * RATE))
    assert whole.starts
    assert chunked.starts == pytest.approx(whole.starts, abs=1e-9)
    assert chunked.last_audio_end == pytest.approx(whole.last_audio_end)


def test_a_discontinuity_starts_a_new_window_grid() -> None:
    heard = VoiceActivity(RATE)
    heard.add(tone(30), start=0.0)  # one whole window, 10 ms pending
    assert heard.starts == pytest.approx([0.0])
    heard.add(tone(40), start=1.005)  # later than 0.03: the pending 10 ms is judged, padded
    assert heard.starts == pytest.approx([0.0, 0.02, 1.005, 1.025])
    assert heard.last_audio_end == pytest.approx(1.045)
    # Audio that goes on where the last chunk ended keeps the new grid.
    heard.add(tone(20), start=1.045)
    assert heard.starts == pytest.approx([0.0, 0.02, 1.005, 1.025, 1.045])


def test_audio_placed_before_the_last_window_keeps_starts_sorted() -> None:
    heard = VoiceActivity(RATE)
    heard.add(tone(40), start=5.0)
    heard.add(tone(40), start=1.0)
    assert heard.starts == sorted(heard.starts)
    assert heard.starts == pytest.approx([1.0, 1.02, 5.0, 5.02])


def test_speaking_at() -> None:
    heard = VoiceActivity(RATE)
    heard.add(
        silence(500) + tone(300) + silence(100) + tone(300) + silence(1000) + tone(200),
        start=0.0,
    )
    # tones: 0.5-0.8, 0.9-1.2, 2.2-2.4
    for t in (0.5, 0.6, 0.79, 0.85, 0.95, 1.19, 2.3):
        assert heard.speaking_at(t), t
    for t in (0.0, 0.3, 0.49, 1.5, 1.9, 2.5, 10.0):
        assert not heard.speaking_at(t), t
    assert not heard.speaking_at(0.85, gap=0.05)  # a 100 ms gap is a pause then


def test_sent_times_maps_offsets_to_playback_times() -> None:
    sent = SentTimes()
    assert sent.time_of(0, RATE) is None
    sent.add(320, start=1.0)
    sent.add(640, start=1.5)  # a later chunk, after a gap
    assert sent.total == 960
    assert sent.time_of(0, RATE) == pytest.approx(1.0)
    assert sent.time_of(160, RATE) == pytest.approx(1.0 + 160 / (2 * RATE))
    assert sent.time_of(320, RATE) == pytest.approx(1.5)
    assert sent.time_of(800, RATE) == pytest.approx(1.5 + 480 / (2 * RATE))
    assert sent.time_of(960, RATE) == pytest.approx(1.52)  # just after the last byte
    assert sent.time_of(961, RATE) is None
    assert sent.time_of(160, 8000) == pytest.approx(1.0 + 160 / 16000)


@pytest.mark.parametrize(("before_ms", "tone_ms", "after_ms"), [(200, 300, 100), (0, 60, 0)])
def test_voiced_span_is_the_tone_within_a_window(
    before_ms: int, tone_ms: int, after_ms: int
) -> None:
    pcm = silence(before_ms) + tone(tone_ms) + silence(after_ms)
    span = voiced_span(pcm, RATE)
    assert span is not None
    start, end = span
    tone_start = len(silence(before_ms))
    tone_end = tone_start + len(tone(tone_ms))
    assert abs(start - tone_start) <= WINDOW_BYTES
    assert abs(end - tone_end) <= WINDOW_BYTES
    assert start % 2 == 0 and end <= len(pcm)


def test_voiced_span_with_a_tone_not_on_window_edges() -> None:
    pcm = silence(213) + tone(177) + silence(5)
    start, end = voiced_span(pcm, RATE) or (0, 0)
    assert abs(start - len(silence(213))) <= WINDOW_BYTES
    assert end == len(pcm)  # the last window, padded, ends the audio


def test_voiced_span_of_silence_is_none() -> None:
    assert voiced_span(silence(500), RATE) is None
    assert voiced_span(b"", RATE) is None


segments = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=1, max_value=300)), min_size=1, max_size=12
)
chunk_sizes = st.lists(st.integers(min_value=1, max_value=1200), min_size=1, max_size=10)


@pytest.mark.generated
@given(segments=segments, sizes=chunk_sizes, start=st.floats(0, 1000))
@budget(ci=300, long=15_000)
def test_chunking_never_changes_the_onsets(
    segments: list[tuple[bool, int]], sizes: list[int], start: float
) -> None:
    """Any split gives the whole audio's windows; each onset is within a window of a tone start."""
    pcm = b""
    tone_starts = []
    for is_tone, ms in segments:
        if is_tone:
            tone_starts.append(start + secs(pcm))
        pcm += tone(ms) if is_tone else silence(ms)
    pcm += bytes(-len(pcm) % WINDOW_BYTES)  # whole windows: nothing left pending

    whole = VoiceActivity(RATE)
    whole.add(pcm, start=start)
    chunked = VoiceActivity(RATE)
    offset = i = 0
    while offset < len(pcm):
        size = 2 * sizes[i % len(sizes)]  # in samples: whole 16-bit samples
        chunked.add(pcm[offset : offset + size], start=start + offset / (2 * RATE))
        offset += size
        i += 1
    assert chunked.starts == pytest.approx(whole.starts, abs=1e-6)

    onsets = [t for j, t in enumerate(whole.starts) if j == 0 or t - whole.starts[j - 1] > 0.03]
    assert len(onsets) <= len(tone_starts)
    for onset in onsets:
        assert any(abs(onset - s) < WINDOW + 1e-6 for s in tone_starts), (onset, tone_starts)
    for onset in onsets:
        assert whole.onset_after(onset - 1e-6) == pytest.approx(onset)


def test_run_start_is_the_start_of_the_speech_going_on():
    activity = VoiceActivity(RATE)
    # tone 1.00-1.50, 100 ms pause, tone 1.60-2.00, then silence
    activity.add(silence(1000) + tone(500) + silence(100) + tone(400) + silence(500), 0.0)
    assert activity.run_start(1.8) == pytest.approx(1.0, abs=0.021)
    assert activity.run_start(1.2) == pytest.approx(1.0, abs=0.021)
    assert activity.run_start(0.5) is None
    assert activity.run_start(2.3) is None
    assert activity.run_start(1.8, gap=0.05) == pytest.approx(1.6, abs=0.021)
