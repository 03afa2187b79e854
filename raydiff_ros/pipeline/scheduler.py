"""A bounded work queue and one worker thread that runs the pose estimator on view sets.

Subscription callbacks only ``submit`` (cheap, never blocks on inference); the worker thread
takes the oldest pending set, runs ``estimate(view_set)`` and hands the result to
``on_result(view_set, result, latency_s)``. Behaviour under load and failure:

* the queue holds at most ``max_pending_view_sets`` sets; submitting to a full queue drops the
  OLDEST pending set (counted in ``dropped``), so the freshest data always gets estimated;
* an exception raised by ``estimate`` is caught and counted (``failed``) and passed to
  ``on_error(view_set, error)``; the worker keeps running;
* a result containing NaN or infinity anywhere (numpy arrays, floats, and the fields of
  dataclasses, tuples, lists and dicts inside it) is never delivered: it is counted
  (``rejected_nonfinite``) and ``on_error`` receives a ``NonFiniteResultError``;
* an exception raised by ``on_result`` or ``on_error`` is logged and counted
  (``callback_failures``), never propagated into the worker;
* with ``inference_deadline_s`` > 0 each ``estimate`` runs in its own daemon thread and the
  worker waits for it at most that long: a set whose estimate has not returned by then is
  abandoned (``timed_out``; ``on_error`` receives an ``InferenceTimeoutError``) and the worker
  goes on with the next set. A Python thread cannot be killed: the abandoned estimate keeps
  running (and keeps its CPU, GPU and memory) until it returns, and its late result or error
  is discarded. Abandoned estimates still running are counted (``abandoned_running``); while
  ``MAX_ABANDONED`` of them run, new sets fail at once instead of piling up more threads. The
  next estimate may run on the same estimator while an abandoned one is still inside it;
* ``stop`` wakes the worker, discards pending sets (``cancelled``) and joins the thread; without
  a deadline a set being estimated finishes first (inference cannot be interrupted), so
  ``stop`` takes a timeout; with a deadline the running estimate is abandoned at once.

Latencies are wall-clock seconds of ``estimate`` (``time.monotonic`` by default).
"""

from collections import deque
import dataclasses
from dataclasses import dataclass
import logging
import math
import threading
import time
from typing import Any, Callable, Generic, Optional, TypeVar

import numpy as np

from raydiff_ros.parameter_fields import check_fields, parameter

LOGGER = logging.getLogger(__name__)

ViewSetT = TypeVar('ViewSetT')
ResultT = TypeVar('ResultT')


class SchedulerError(RuntimeError):
    """The scheduler was misconfigured or used in the wrong state."""


class NonFiniteResultError(ValueError):
    """The estimator returned NaN or infinite values; the result was not published."""


class InferenceTimeoutError(TimeoutError):
    """The estimator did not return within the deadline; the set was abandoned."""


#: Most abandoned estimates (past their deadline, still running) before new sets fail at once.
MAX_ABANDONED = 2


@dataclass(frozen=True)
class SchedulerConfig:
    """Work-queue parameters (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration.
    ``max_pending_view_sets`` 1 always estimates the newest set; larger values also estimate
    sets formed while the worker was busy.
    """

    max_pending_view_sets: int = parameter(
        2, 'queue length; a full queue drops its oldest set', minimum=1
    )
    stop_timeout_s: float = parameter(
        10.0, 'how long stop waits for a running inference', minimum=0.0, exclusive_minimum=True
    )
    inference_deadline_s: float = parameter(
        0.0,
        'give up on a view set whose estimate has not returned after this long and go on with '
        'the next (0: wait forever); the abandoned estimate runs on in its thread, its result '
        'is discarded',
        minimum=0.0,
        unit='s',
    )

    def __post_init__(self) -> None:
        check_fields(self, SchedulerError)


@dataclass(frozen=True)
class SchedulerCounters:
    """A consistent snapshot of the scheduler's diagnostics.

    Every submitted set ends up in exactly one of ``estimated``, ``failed``,
    ``rejected_nonfinite``, ``timed_out``, ``dropped``, ``cancelled``, or is still ``pending`` /
    running. ``abandoned_running``: estimates past their deadline that have not returned yet.
    ``last_latency_s`` and ``mean_latency_s`` cover the estimate calls that returned (finite or
    not); NaN before the first.
    """

    scheduled: int = 0
    estimated: int = 0
    dropped: int = 0
    failed: int = 0
    rejected_nonfinite: int = 0
    timed_out: int = 0
    cancelled: int = 0
    callback_failures: int = 0
    pending: int = 0
    busy: bool = False
    abandoned_running: int = 0
    last_latency_s: float = math.nan
    mean_latency_s: float = math.nan


def is_finite_result(value: Any) -> bool:
    """Whether no NaN or infinity hides in ``value`` (arrays, numbers, containers, dataclasses).

    Strings, None, booleans and other objects count as finite.
    """
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.number):
            return bool(np.all(np.isfinite(value)))
        return all(is_finite_result(v) for v in value.flat) if value.dtype == object else True
    if isinstance(value, (float, np.floating, complex, np.complexfloating)):
        return bool(np.isfinite(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(is_finite_result(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return all(is_finite_result(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(is_finite_result(v) for v in value)
    return True


class InferenceScheduler(Generic[ViewSetT, ResultT]):
    """Runs ``estimate`` on submitted view sets in one worker thread (see module docstring).

    Args:
        estimate: ``estimate(view_set) -> result``; runs on the worker thread only.
        on_result: ``on_result(view_set, result, latency_s)`` for every finite result.
        on_error: ``on_error(view_set, error)`` for an exception or a non-finite result.
        config: queue parameters.
        clock: monotonic seconds, for latencies.
        name: the worker thread's name.
    """

    def __init__(
        self,
        estimate: Callable[[ViewSetT], ResultT],
        on_result: Callable[[ViewSetT, ResultT, float], None],
        on_error: Optional[Callable[[ViewSetT, BaseException], None]] = None,
        config: SchedulerConfig = SchedulerConfig(),
        clock: Callable[[], float] = time.monotonic,
        name: str = 'raydiff-inference',
    ) -> None:
        self._estimate = estimate
        self._on_result = on_result
        self._on_error = on_error
        self._config = config
        self._clock = clock
        self._name = name
        self._pending: deque = deque()
        self._condition = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._busy = False
        self._counts = dict(
            scheduled=0, estimated=0, dropped=0, failed=0, rejected_nonfinite=0, timed_out=0,
            cancelled=0, callback_failures=0,
        )
        self._abandoned: list[threading.Thread] = []
        self._calls = 0
        self._last_latency = math.nan
        self._latency_sum = 0.0
        self._latency_count = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the worker thread (again after a ``stop``)."""
        with self._condition:
            if self.running:
                raise SchedulerError('the scheduler is already running')
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout_s: Optional[float] = None) -> bool:
        """Discard pending sets, stop the worker and join it.

        Args:
            timeout_s: how long to wait for a running estimate; default
                ``config.stop_timeout_s``.

        Returns:
            True when the worker has ended (or never ran), False on timeout.
        """
        with self._condition:
            self._stopping = True
            self._counts['cancelled'] += len(self._pending)
            self._pending.clear()
            self._condition.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(self._config.stop_timeout_s if timeout_s is None else timeout_s)
        return not thread.is_alive()

    # -- producer side -----------------------------------------------------------------------

    def submit(self, view_set: ViewSetT) -> int:
        """Queue a view set for estimation; never blocks on inference.

        Returns:
            How many older pending sets were dropped to make room (0 or 1).

        Raises:
            SchedulerError: the scheduler is not running, or ``view_set`` is None.
        """
        if view_set is None:
            raise SchedulerError('cannot submit None as a view set')
        with self._condition:
            if not self.running or self._stopping:
                raise SchedulerError('submit() on a scheduler that is not running')
            dropped = 0
            while len(self._pending) >= self._config.max_pending_view_sets:
                self._pending.popleft()
                dropped += 1
            self._pending.append(view_set)
            self._counts['scheduled'] += 1
            self._counts['dropped'] += dropped
            self._condition.notify_all()
            return dropped

    def wait_idle(self, timeout_s: Optional[float] = None) -> bool:
        """Block until nothing is pending or running; True unless the timeout expired."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._pending and not self._busy, timeout=timeout_s
            )

    def counters(self) -> SchedulerCounters:
        """A consistent snapshot of the diagnostics counters."""
        with self._condition:
            mean = (
                self._latency_sum / self._latency_count if self._latency_count else math.nan
            )
            return SchedulerCounters(
                pending=len(self._pending),
                busy=self._busy,
                abandoned_running=self._abandoned_running(),
                last_latency_s=self._last_latency,
                mean_latency_s=mean,
                **self._counts,
            )

    # -- worker side -------------------------------------------------------------------------

    def _next(self) -> Optional[ViewSetT]:
        with self._condition:
            self._condition.wait_for(lambda: self._pending or self._stopping)
            if self._stopping:
                return None
            self._busy = True
            return self._pending.popleft()

    def _finish(self, outcome: str, latency_s: Optional[float]) -> None:
        with self._condition:
            self._counts[outcome] += 1
            if latency_s is not None:
                self._last_latency = latency_s
                self._latency_sum += latency_s
                self._latency_count += 1
            self._busy = False
            self._condition.notify_all()

    def _call(self, callback: Optional[Callable], *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a callback bug must not kill the worker
            LOGGER.exception('%s callback raised', getattr(callback, '__name__', 'a'))
            with self._condition:
                self._counts['callback_failures'] += 1

    def _abandoned_running(self) -> int:
        """Abandoned estimates still running (forgets those that returned); lock held."""
        self._abandoned = [thread for thread in self._abandoned if thread.is_alive()]
        return len(self._abandoned)

    def _estimate_within_deadline(self, view_set: ViewSetT, deadline_s: float) -> Any:
        """``estimate(view_set)`` in its own thread, waited for at most ``deadline_s``.

        Raises:
            InferenceTimeoutError: no result in time (or ``stop`` was called meanwhile); the
                thread is abandoned and whatever it returns later is discarded.
            Exception: what ``estimate`` raised.
        """
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                value = self._estimate(view_set)
                key = 'result'
            except BaseException as error:  # noqa: BLE001 - handed to the worker (or dropped)
                value, key = error, 'error'
            with self._condition:
                outcome[key] = value
                self._condition.notify_all()

        with self._condition:
            running = self._abandoned_running()
            if running >= MAX_ABANDONED:
                raise InferenceTimeoutError(
                    f'{running} abandoned estimates are still running; set not estimated')
            self._calls += 1
            thread = threading.Thread(target=call, name=f'{self._name}-{self._calls}',
                                      daemon=True)
            thread.start()
            done = self._condition.wait_for(lambda: outcome or self._stopping, deadline_s)
            if not outcome:
                self._abandoned.append(thread)  # its late result lands in a dict nobody reads
                reason = 'stopping' if done else f'no result after {deadline_s:g} s'
                raise InferenceTimeoutError(f'{reason}; the set is abandoned (its estimate '
                                            'runs on in the background)')
        if 'error' in outcome:
            raise outcome['error']
        return outcome['result']

    def _run(self) -> None:
        while True:
            view_set = self._next()
            if view_set is None:
                return
            deadline_s = self._config.inference_deadline_s
            started = self._clock()
            try:
                if deadline_s > 0:
                    result = self._estimate_within_deadline(view_set, deadline_s)
                else:
                    result = self._estimate(view_set)
            except InferenceTimeoutError as error:
                if self._stopping:  # stop() abandoned the running set: cancelled, not failed
                    self._finish('cancelled', None)
                    return
                self._call(self._on_error, view_set, error)
                self._finish('timed_out', None)
                continue
            except Exception as error:  # the estimator's failure is reported, not fatal
                self._call(self._on_error, view_set, error)
                self._finish('failed', None)
                continue
            latency = self._clock() - started
            if is_finite_result(result):
                self._call(self._on_result, view_set, result, latency)
                self._finish('estimated', latency)
            else:
                error = NonFiniteResultError('the estimator returned non-finite values')
                self._call(self._on_error, view_set, error)
                self._finish('rejected_nonfinite', latency)
