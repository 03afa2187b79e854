"""Hostile messages to the estimator node in its own process, over DDS.

A handful of malformed images and camera infos (the cases the pure fuzz tests of
``test/pipeline/test_fuzz_inputs.py`` cover by the thousand) and hostile parameter requests go
to a running node: each bad input is counted in ``/diagnostics``, the node keeps answering its
services, refuses the parameters with a reason, and publishes no estimate, graph or transform.
"""

import math
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from node_probe import Probe, stamp, start_node, stop_node  # noqa: E402
from node_scenarios import IMAGE_HEIGHT, IMAGE_WIDTH, intrinsics  # noqa: E402
from rcl_interfaces.srv import GetParameters, SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

NODE = 'raydiff_estimator'
PARAMETERS = {'num_cameras': 2, 'mode': 'rig', 'estimator': 'python:node_scenarios:make_oracle',
              'keyframe_min_interval_s': 0.0, 'schedule_period_s': 0.05,
              'diagnostics_period_s': 0.2, 'image_qos': 'reliable'}
STAMP_NS = 5_000_000_000
PIXELS = bytes(range(256)) * 3
SEND_GAP_S = 0.1


def hostile_images() -> list[Image]:
    """Images whose fields disagree with their data, or claim huge sizes."""
    cases = [
        dict(encoding='yuv422', height=2, width=2, step=4, data=PIXELS[:8]),
        dict(encoding='rgb8', height=4, width=4, step=12, data=PIXELS[:20]),       # truncated
        dict(encoding='rgb8', height=2, width=2, step=6, data=PIXELS[:400]),       # oversized
        dict(encoding='mono16', height=3, width=3, step=6, is_bigendian=1, data=PIXELS[:17]),
        dict(encoding='rgb8', height=2**31, width=2**31, step=2**32 - 1, data=PIXELS[:9]),
        dict(encoding='bgra8', height=3, width=3, step=0, data=b''),
        dict(encoding='', height=0, width=0, step=0, data=b''),
    ]
    messages = []
    for index, fields in enumerate(cases):
        message = Image(**fields)
        message.header.stamp = stamp(STAMP_NS + index)
        message.header.frame_id = 'cam0_optical_frame'
        messages.append(message)
    return messages


def hostile_camera_infos() -> list[CameraInfo]:
    """CameraInfo with zeros, NaN, a negative focal length, a bad bottom row, NaN distortion."""
    good = intrinsics()
    matrices = [np.zeros((3, 3)), np.full((3, 3), math.nan), good * [[-1], [1], [1]],
                np.vstack([good[:2], [0.0, 1.0, 1.0]]), good]
    messages = []
    for index, K in enumerate(matrices):
        message = CameraInfo(width=IMAGE_WIDTH, height=IMAGE_HEIGHT, distortion_model='x',
                             d=[math.nan] * 40 if index == len(matrices) - 1 else [])
        message.header.stamp = stamp(STAMP_NS)
        message.k = [float(v) for v in np.asarray(K, dtype=float).ravel()]
        message.p = [float(v) for v in np.hstack([K, np.zeros((3, 1))]).ravel()]
        messages.append(message)
    return messages


def call(probe: Probe, service_type, name: str, request):
    client = probe.node.create_client(service_type, f'/{NODE}/{name}')
    assert client.wait_for_service(timeout_sec=10), name
    future = client.call_async(request)
    assert probe.wait_for(future.done, 10), f'{name} did not answer'
    return future.result()


def test_hostile_messages_are_diagnosed_and_the_node_answers_and_publishes_nothing(tmp_path):
    rclpy.init()
    process = start_node(PARAMETERS, tmp_path)
    probe = Probe(2)
    try:
        assert probe.wait_for_node(), stop_node(process)
        images, infos = hostile_images(), hostile_camera_infos()
        for publisher, message in [(probe.infos[0], m) for m in infos] + [
                (probe.images[0], m) for m in images]:
            publisher.publish(message)
            time.sleep(SEND_GAP_S)  # the node keeps the last 5 per topic (reliable, keep last)

        def diagnosed() -> bool:
            values = probe.diagnostics_values()
            return (int(values.get('input_errors_image_0', 0)) >= len(images)
                    and int(values.get('input_errors_camera_info_0', 0)) >= len(infos))

        assert probe.wait_for(diagnosed, 20), {
            k: v for k, v in probe.diagnostics_values().items() if 'error' in k or k[0] == '_'}

        names = ['mode', 'num_cameras']
        values = call(probe, GetParameters, 'get_parameters', GetParameters.Request(names=names))
        assert [v.string_value for v in values.values][:1] == ['rig']
        bad = [Parameter('keyframe_min_change', value=math.nan), Parameter('mode', value=3),
               Parameter('num_cameras', value=7), Parameter('calibration_output_dir',
                                                            value='/etc')]
        results = call(probe, SetParameters, 'set_parameters',
                       SetParameters.Request(parameters=[p.to_parameter_msg() for p in bad]))
        assert all(not r.successful and r.reason for r in results.results), results.results
        response = call(probe, Trigger, 'save_calibration', Trigger.Request())
        assert not response.success and response.message

        time.sleep(0.5)
        assert process.poll() is None, 'the node died:\n' + process.log_path.read_text()
        for key in ('estimate', 'graph', 'tf', 'tf_static', 'seed'):
            assert not probe.received[key], key
    finally:
        probe.close()
        stop_node(process)
        rclpy.try_shutdown()
