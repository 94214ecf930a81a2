"""Reading a latency match over several timing processes (no timing here: the sessions are replaced)."""

import pytest
from torch import nn

from darc import match_timing as M


def test_several_sessions_are_read_on_their_median_with_their_range(monkeypatch):
    ratios = iter([0.9, 1.2, 1.0])
    monkeypatch.setattr(M, "session_in_fresh_process",
                        lambda *a, **k: {"ratio": (r := next(ratios)), "q25": r - 0.01, "q75": r + 0.03})
    row = M.match_against_darc(nn.Identity(), nn.Identity(), (1, 4, 4), 64, threads=1, pairs=2,
                               min_block_time=0.01, sessions=3, darc_dir="d", peer_dir="p")
    assert row["match_speedup_b64"] == pytest.approx(1.0) and row["match_sessions"] == 3
    assert row["match_speedup_b64_range"] == pytest.approx(0.3)
    assert row["match_speedup_b64_iqr"] == pytest.approx(0.04)


def test_one_session_times_in_this_process_and_no_session_is_refused(monkeypatch):
    seen = []
    monkeypatch.setattr(M, "one_session", lambda d, p, *a, **k: seen.append((d, p)) or
                        {"ratio": 1.03, "q25": 1.0, "q75": 1.05})
    monkeypatch.setattr(M, "session_in_fresh_process", lambda *a, **k: pytest.fail("no child for one session"))
    darc, peer = nn.Identity(), nn.Identity()
    row = M.match_against_darc(darc, peer, (1, 4, 4), 1, threads=1, pairs=2, min_block_time=0.01)
    assert seen == [(darc, peer)] and row["match_speedup_b1"] == 1.03 and row["match_speedup_b1_range"] == 0.0
    with pytest.raises(ValueError, match="sessions"):
        M.match_against_darc(darc, peer, (1, 4, 4), 1, threads=1, pairs=2, min_block_time=0.01, sessions=0)
