"""The inference scheduler: drop-oldest under load, failure isolation, NaN rejection, stop.

Synchronisation uses Events; timeouts below are safety nets against a hang, never timing
assertions.
"""

from dataclasses import dataclass
import math
import threading

import numpy as np
import pytest

from raydiff_ros.pipeline.scheduler import (
    MAX_ABANDONED,
    InferenceScheduler,
    InferenceTimeoutError,
    NonFiniteResultError,
    SchedulerConfig,
    SchedulerError,
    is_finite_result,
)

SAFETY_TIMEOUT_S = 30.0


class Recorder:
    """Collects results and errors delivered by the scheduler."""

    def __init__(self):
        self.results = []
        self.errors = []

    def on_result(self, view_set, result, latency_s):
        self.results.append((view_set, result, latency_s))

    def on_error(self, view_set, error):
        self.errors.append((view_set, error))


def _scheduler(estimate, recorder, **config):
    scheduler = InferenceScheduler(
        estimate, recorder.on_result, recorder.on_error, SchedulerConfig(**config)
    )
    scheduler.start()
    return scheduler


def test_results_are_delivered_with_latencies_from_the_clock():
    recorder = Recorder()
    ticks = iter([10.0, 10.5, 20.0, 22.0])  # start / end of two estimates
    scheduler = InferenceScheduler(
        lambda view_set: view_set * 2, recorder.on_result, recorder.on_error,
        clock=lambda: next(ticks),
    )
    scheduler.start()
    scheduler.submit(1)
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    scheduler.submit(2)
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert recorder.results == [(1, 2, 0.5), (2, 4, 2.0)]
    counters = scheduler.counters()
    assert (counters.scheduled, counters.estimated, counters.dropped) == (2, 2, 0)
    assert counters.last_latency_s == 2.0 and counters.mean_latency_s == 1.25
    assert scheduler.stop()


def test_the_oldest_pending_sets_are_dropped_when_inference_falls_behind():
    recorder = Recorder()
    started, release = threading.Event(), threading.Event()

    def slow_estimate(view_set):
        if view_set == 'first':
            started.set()
            release.wait(SAFETY_TIMEOUT_S)
        return view_set

    scheduler = _scheduler(slow_estimate, recorder, max_pending_view_sets=2)
    scheduler.submit('first')
    assert started.wait(SAFETY_TIMEOUT_S)  # the worker is busy with 'first'
    assert scheduler.submit('second') == 0
    assert scheduler.submit('third') == 0
    assert scheduler.submit('fourth') == 1  # the queue was full: 'second' is dropped
    assert scheduler.submit('fifth') == 1  # ... then 'third'
    counters = scheduler.counters()
    assert counters.busy and counters.pending == 2 and counters.dropped == 2
    release.set()
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert [r[0] for r in recorder.results] == ['first', 'fourth', 'fifth']
    counters = scheduler.counters()
    assert (counters.scheduled, counters.estimated, counters.dropped, counters.pending) == (
        5, 3, 2, 0
    )
    assert scheduler.stop()


def test_an_estimator_exception_is_reported_and_the_worker_survives():
    recorder = Recorder()

    def flaky(view_set):
        if view_set == 'bad':
            raise RuntimeError('CUDA out of memory')
        return view_set

    scheduler = _scheduler(flaky, recorder)
    scheduler.submit('bad')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    scheduler.submit('good')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert [r[0] for r in recorder.results] == ['good']
    [(view_set, error)] = recorder.errors
    assert view_set == 'bad' and isinstance(error, RuntimeError) and 'CUDA' in str(error)
    counters = scheduler.counters()
    assert (counters.failed, counters.estimated) == (1, 1)
    assert scheduler.running and scheduler.stop()


@dataclass(frozen=True, eq=False)
class _Poses:
    """A result with an array field (the scheduler inspects dataclass fields)."""

    t: np.ndarray


def test_non_finite_results_are_rejected_and_never_published():
    recorder = Recorder()
    good = _Poses(t=np.zeros((1, 2, 3)))
    bad = _Poses(t=np.array([[[0.0, 0.0, 0.0], [np.nan, 0.0, 1.0]]]))
    scheduler = _scheduler(lambda view_set: bad if view_set == 'nan' else good, recorder)
    scheduler.submit('nan')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    scheduler.submit('ok')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert [(r[0], r[1]) for r in recorder.results] == [('ok', good)]
    [(view_set, error)] = recorder.errors
    assert view_set == 'nan' and isinstance(error, NonFiniteResultError)
    counters = scheduler.counters()
    assert (counters.rejected_nonfinite, counters.estimated, counters.failed) == (1, 1, 0)
    assert scheduler.stop()


def test_a_failing_result_callback_does_not_kill_the_worker():
    calls = []

    def on_result(view_set, result, latency_s):
        calls.append(view_set)
        if view_set == 1:
            raise ValueError('publisher gone')

    scheduler = InferenceScheduler(lambda view_set: view_set, on_result)
    scheduler.start()
    for view_set in (1, 2):
        scheduler.submit(view_set)
        assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert calls == [1, 2]
    counters = scheduler.counters()
    assert counters.callback_failures == 1 and counters.estimated == 2
    assert scheduler.stop()


def test_stop_cancels_pending_sets_joins_and_can_restart():
    recorder = Recorder()
    started, release = threading.Event(), threading.Event()

    def blocking(view_set):
        started.set()
        release.wait(SAFETY_TIMEOUT_S)
        return view_set

    scheduler = _scheduler(blocking, recorder, max_pending_view_sets=3)
    scheduler.submit('running')
    assert started.wait(SAFETY_TIMEOUT_S)
    scheduler.submit('pending 1')
    scheduler.submit('pending 2')
    # The worker is blocked in 'running': stop cancels the pending sets, then times out.
    assert not scheduler.stop(timeout_s=0.01)
    counters = scheduler.counters()
    assert counters.cancelled == 2 and counters.pending == 0 and counters.busy
    release.set()
    assert scheduler.stop(SAFETY_TIMEOUT_S)
    assert not scheduler.running
    # The set that was running finished (inference cannot be interrupted) and was delivered.
    assert [r[0] for r in recorder.results] == ['running']
    with pytest.raises(SchedulerError, match='not running'):
        scheduler.submit('late')
    scheduler.start()
    scheduler.submit('again')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert recorder.results[-1][0] == 'again'
    assert scheduler.stop()


def test_a_hung_estimate_is_abandoned_at_the_deadline_and_its_late_result_discarded():
    recorder = Recorder()
    release = threading.Event()

    def hangs_on_bad(view_set):
        if view_set == 'bad':
            release.wait(SAFETY_TIMEOUT_S)
        return view_set

    scheduler = _scheduler(hangs_on_bad, recorder, inference_deadline_s=0.05)
    scheduler.submit('bad')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    scheduler.submit('good')
    assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert [r[0] for r in recorder.results] == ['good']
    [(view_set, error)] = recorder.errors
    assert view_set == 'bad' and isinstance(error, InferenceTimeoutError)
    assert 'no result after 0.05 s' in str(error)
    counters = scheduler.counters()
    assert (counters.timed_out, counters.estimated, counters.abandoned_running) == (1, 1, 1)
    before = threading.active_count()
    release.set()  # the hung estimate returns late: nothing is delivered, its thread ends
    for _ in range(int(SAFETY_TIMEOUT_S / 0.01)):
        if scheduler.counters().abandoned_running == 0:
            break
        threading.Event().wait(0.01)
    assert scheduler.counters().abandoned_running == 0
    assert threading.active_count() == before - 1
    assert [r[0] for r in recorder.results] == ['good'] and len(recorder.errors) == 1
    assert scheduler.stop()


def test_too_many_abandoned_estimates_fail_new_sets_at_once():
    recorder = Recorder()
    release = threading.Event()
    scheduler = _scheduler(lambda view_set: release.wait(SAFETY_TIMEOUT_S), recorder,
                           inference_deadline_s=0.02)
    for k in range(MAX_ABANDONED + 1):
        scheduler.submit(k)
        assert scheduler.wait_idle(SAFETY_TIMEOUT_S)
    assert scheduler.counters().abandoned_running == MAX_ABANDONED
    assert 'still running' in str(recorder.errors[-1][1])
    assert scheduler.counters().timed_out == MAX_ABANDONED + 1
    release.set()
    assert scheduler.stop()


def test_stop_abandons_a_running_estimate_when_there_is_a_deadline():
    recorder = Recorder()
    started, release = threading.Event(), threading.Event()

    def blocking(view_set):
        started.set()
        release.wait(SAFETY_TIMEOUT_S)
        return view_set

    scheduler = _scheduler(blocking, recorder, inference_deadline_s=SAFETY_TIMEOUT_S)
    scheduler.submit('running')
    assert started.wait(SAFETY_TIMEOUT_S)
    assert scheduler.stop(SAFETY_TIMEOUT_S / 2)  # returns without waiting for the estimate
    counters = scheduler.counters()
    assert counters.cancelled == 1 and counters.timed_out == 0 and not recorder.errors
    release.set()
    assert not recorder.results


def test_misuse_is_refused():
    scheduler = InferenceScheduler(lambda view_set: view_set, lambda *args: None)
    with pytest.raises(SchedulerError, match='not running'):
        scheduler.submit(1)
    assert scheduler.stop()  # never started: nothing to join
    scheduler.start()
    with pytest.raises(SchedulerError, match='already running'):
        scheduler.start()
    with pytest.raises(SchedulerError, match='None'):
        scheduler.submit(None)
    assert scheduler.stop()
    with pytest.raises(SchedulerError, match='max_pending_view_sets'):
        SchedulerConfig(max_pending_view_sets=0)


def test_counters_before_any_estimate():
    counters = InferenceScheduler(lambda view_set: view_set, lambda *args: None).counters()
    assert counters.scheduled == 0 and math.isnan(counters.mean_latency_s)


@dataclass
class _Nested:
    values: dict
    label: str = 'x'


@pytest.mark.parametrize(
    'value, finite',
    [
        (np.ones(3), True),
        (np.array([1.0, np.inf]), False),
        (1.5, True),
        (float('nan'), False),
        ([1.0, (2.0, np.array([np.nan]))], False),
        (_Nested({'a': np.zeros(2)}), True),
        (_Nested({'a': np.array([np.nan])}), False),
        ('text', True),
        (None, True),
        (np.array(['a', 'b']), True),
    ],
)
def test_finiteness_check_looks_inside_containers(value, finite):
    assert is_finite_result(value) is finite
