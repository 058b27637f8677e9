from pipecat_wsclient import WebsocketClientStats
from pipecat_wsclient.throttle import LogThrottle


def test_throttle_counts_suppressed_events():
    t = LogThrottle(interval_secs=5.0)
    assert t.allow(0.0) == 0
    assert t.allow(1.0) is None
    assert t.allow(4.9) is None
    assert t.allow(5.0) == 2
    assert t.allow(5.1) is None


def test_stats_snapshot_is_a_copy():
    s = WebsocketClientStats()
    snap = s.snapshot()
    s.bytes_out += 10
    assert snap.bytes_out == 0
    assert s.as_dict()["bytes_out"] == 10
