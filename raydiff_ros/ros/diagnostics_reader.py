"""Read a node's key values from /diagnostics (used by the benchmark and the tests)."""

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node


class DiagnosticsReader:
    """Keeps the newest key values published on /diagnostics by the node named ``node_name``."""

    def __init__(self, node: Node, node_name: str, topic: str = '/diagnostics') -> None:
        self._prefix = node_name
        self._latest: dict[str, str] = {}
        node.create_subscription(DiagnosticArray, topic, self._on_diagnostics, 10)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name.startswith(self._prefix):
                values = {kv.key: kv.value for kv in status.values}
                values['_message'] = status.message
                self._latest = values

    def latest(self) -> dict[str, str]:
        return dict(self._latest)
