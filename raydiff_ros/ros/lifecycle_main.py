"""The process around a lifecycle node: what the ``main`` of the estimator node runs.

:func:`run_lifecycle_node` initialises rclpy, builds the node (invalid parameters: a message
on stderr and exit code 2), configures and activates it when its ``autostart`` parameter is
true (what a lifecycle manager would do otherwise), spins it in a multi-threaded executor so
services and parameters stay served while callbacks run, and on exit releases the node's
resources (``node.release()``), destroys it and shuts rclpy down.
"""

import sys
from typing import Callable, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
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
    num_threads: int = 3,
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
    executor = MultiThreadedExecutor(num_threads=num_threads)
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
