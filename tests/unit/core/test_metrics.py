"""The metrics registry of a node: probes, one registry per hub, rendering at most once a second."""

from __future__ import annotations

from hub import Hub
from hub.config import load
from hub.core.metrics import RENDER_EVERY, Metrics
from hub.core.node import Node
from tests.helpers.hubs import make_config
from tests.helpers.metrics import metric_samples


def test_metrics_are_rendered_at_most_once_a_second() -> None:
    node = Node(load(None, {"source": {"source": "none"}}))
    now = [100.0]
    metrics = Metrics(node, clock=lambda: now[0])
    first = metrics.latest()
    node.stats.requests += 12345
    assert metrics.latest() is first
    now[0] += RENDER_EVERY
    assert b"12345" in metrics.latest()


async def test_component_probes_show_upstream_and_broker_state() -> None:
    hub = Hub(make_config())
    up = {"value": True}
    hub.node.metrics.probe("upstream", "ws://10.0.0.1:6006", lambda: up["value"])
    hub.node.metrics.probe("broker", "redis", lambda: False)
    found = metric_samples(hub.node.metrics.render().decode())
    key = ("hub_component_up", (("component", "upstream"), ("name", "ws://10.0.0.1:6006")))
    assert found[key] == 1
    assert found[("hub_component_up", (("component", "broker"), ("name", "redis")))] == 0
    up["value"] = False
    assert metric_samples(hub.node.metrics.render().decode())[key] == 0


def test_each_hub_has_its_own_registry() -> None:
    first, second = Hub(make_config()), Hub(make_config())
    assert first.node.metrics.registry is not second.node.metrics.registry
    first.node.metrics.latency.observe(0.001)
    assert b"hub_publish_to_write_seconds_count 1.0" in first.node.metrics.render()
    assert b"hub_publish_to_write_seconds_count 0.0" in second.node.metrics.render()
    first.node.metrics.latency.observe(0.25, 4)  # a flush's four writes of one stamp
    rendered = first.node.metrics.render()
    assert b"hub_publish_to_write_seconds_count 5.0" in rendered
    assert b"hub_publish_to_write_seconds_sum 1.001" in rendered
