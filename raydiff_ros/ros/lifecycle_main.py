"""The process around a lifecycle node: what the ``main`` of the estimator node runs.

:func:`run_lifecycle_node` initialises rclpy, builds the node (invalid parameters: a message
on stderr and exit code 2), configures and activates it when its ``autostart`` parameter is
true (what a lifecycle manager would do otherwise), spins it in a single-threaded executor, and
on exit releases the node's resources (``node.release()``), destroys it and shuts rclpy down.

Single-threaded on purpose: every callback of the node is short (the estimator runs in its own
thread), and rclpy's ``MultiThreadedExecutor`` busy-waits while a mutually exclusive callback
group is busy and more of its messages are ready (ros2/rclpy#1452): in the soak benchmark (4
cameras at 30 Hz) its main thread used a whole core holding the GIL, the estimator thread
waited for the GIL, one 4-view set took about 90 s instead of 1 s and 91 % of the images were
dropped (bench/README.md).
"""

import sys
from typing import Callable, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import TransitionCallbackReturn


def autostart(node: LifecycleNode) -> bool:
    """Configure and activate (what a lifecycle manager would do); False on failure."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def run_lifecycle_node(
    make_node: Callable[[], LifecycleNode],
    program: str,
    args: Optional[list[str]] = None,
) -> int:
    """Run the node ``make_node()`` until shutdown; the process exit code.

    The node must declare ``autostart`` and have ``release()``. ``program`` names the process
    in the message about invalid parameters.
    """
    rclpy.init(args=args)
    try:
        node = make_node()
    except (ValueError, rclpy.exceptions.InvalidParameterValueException) as error:
        print(f'{program}: invalid parameters: {error}', file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    if node.get_parameter('autostart').value and not autostart(node):
        node.get_logger().error(
            'autostart failed: the node stays unconfigured; fix the '
            'parameters and trigger configure again'
        )
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.release()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
