"""The node's output messages built from a pipeline estimate (``ros/messages.py``), in-process."""

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from node_scenarios import estimate_with_sources, rig_poses  # noqa: E402

from raydiff_ros.ros.conversions import pose_to_matrix  # noqa: E402
from raydiff_ros.ros.messages import output_frames, view_set_estimate_msg  # noqa: E402


def test_every_camera_message_says_what_fixed_its_pose():
    sources = ('reference', 'verified_matches', 'prior')
    view_set, estimate = estimate_with_sources(sources)
    frames = output_frames(view_set, 'raydiff/')
    message = view_set_estimate_msg(estimate, view_set, frames, 7, 0.25, 'fused')

    assert [camera.pose_source for camera in message.cameras] == list(sources)
    assert [camera.header.frame_id for camera in message.cameras] == frames
    assert [camera.camera_index for camera in message.cameras] == [0, 1, 2]
    assert (message.sequence, message.model_name) == (7, 'fused')
    np.testing.assert_allclose(pose_to_matrix(message.cameras[2].pose), rig_poses(3)[2],
                               atol=1e-9)
    # the stored 64 x 48 K rescaled to the incoming 640 x 480: cx = 10 (31.5 + 0.5) - 0.5
    assert list(message.cameras[1].intrinsics) == pytest.approx([500.0, 500.0, 319.5, 239.5])


def test_an_estimator_that_names_no_sources_is_published_as_unspecified():
    view_set, estimate = estimate_with_sources(())
    message = view_set_estimate_msg(estimate, view_set, output_frames(view_set, ''), 1, 0.1,
                                    'oracle')
    assert [camera.pose_source for camera in message.cameras] == [
        'reference', 'unspecified', 'unspecified']
