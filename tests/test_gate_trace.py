"""Reading a search's gate log: the gates at a logged time, and whether the live candidates settled."""

import json

import pytest

from darc.gate_trace import gates_at, logged_times, read_gate_log, settling


def _rows(trace):
    """Gate-log rows from {t: {slot: {candidate: gate}}}."""
    return [{"t": t, "slot": s, "candidate": c, "gate": g}
            for t, slots in trace.items() for s, gates in slots.items() for c, g in gates.items()]


def _log(tmp_path, trace):
    (tmp_path / "gates.jsonl").write_text("\n".join(json.dumps(r) for r in _rows(trace)) + "\n")
    return tmp_path


def test_gates_at_a_time_and_the_times_logged(tmp_path):
    rows = read_gate_log(_log(tmp_path, {0.0: {"a": {"x": 0.25}}, 0.5: {"a": {"x": -0.1}}}))
    assert logged_times(rows) == [0.0, 0.5]
    assert gates_at(rows, 0.5) == {"a": {"x": 0.1}}  # |gate|: a negative gate is as live as a positive one


def test_a_gate_that_reaches_zero_in_the_last_third_is_not_settled():
    trace = {0.0: {"a": {"x": 0.25, "y": 0.25}}, 0.5: {"a": {"x": 0.3, "y": 0.1}},
             0.75: {"a": {"x": 0.32, "y": 0.05}}, 1.0: {"a": {"x": 0.33, "y": 0.0}}}
    s = settling(_rows(trace))
    assert (s.t_from, s.t_to) == (0.5, 1.0)  # the latest time at least a third of the span before the end
    assert s.zeroed == ("a/y",) and not s.revived and not s.settled
    assert s.largest == "a/y" and s.max_change == pytest.approx(0.1)


def test_gates_that_only_drift_while_the_live_sets_hold_are_settled():
    trace = {0.0: {"a": {"x": 0.25, "y": 0.25}}, 0.5: {"a": {"x": 0.3, "y": 0.0}}, 1.0: {"a": {"x": 0.35, "y": 0.0}}}
    s = settling(_rows(trace))
    assert s.settled and s.max_change == pytest.approx(0.05) and s.largest == "a/x"
    # a window reaching back to the start sees y reach zero
    assert settling(_rows(trace), window=1.0).zeroed == ("a/y",)


def test_a_log_too_short_or_a_missing_log_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="log_gates_every"):
        settling(_rows({1.0: {"a": {"x": 0.1}}}))
    with pytest.raises(ValueError, match="window"):
        settling(_rows({0.0: {"a": {"x": 0.1}}, 1.0: {"a": {"x": 0.1}}}), window=0)
    with pytest.raises(FileNotFoundError, match="gates.jsonl"):
        read_gate_log(tmp_path)
