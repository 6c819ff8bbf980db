"""Gateway pieces that need no broker: topics, broker URLs, message decoding."""

from __future__ import annotations

import pytest

from carebridge.devices.gateway import (
    BrokerAddress,
    Received,
    device_of_topic,
    to_delivery,
    topic_filter,
)


class TestTopics:
    @pytest.mark.parametrize(
        ("topic", "device"),
        [
            ("devices/cuff-1/readings", "cuff-1"),
            ("site-a/devices/cuff-1/readings", "cuff-1"),
            ("devices//readings", None),
            ("devices/cuff-1/status", None),
            ("cuff-1/readings", None),
        ],
    )
    def test_device_id_comes_from_the_topic(self, topic: str, device: str | None) -> None:
        assert device_of_topic(topic) == device

    def test_prefix_goes_before_the_filter(self) -> None:
        assert topic_filter() == "devices/+/readings"
        assert topic_filter("/run-1/") == "run-1/devices/+/readings"


class TestBrokerAddress:
    def test_defaults_to_1883(self) -> None:
        assert BrokerAddress.parse("mqtt://broker") == BrokerAddress("broker", 1883)

    def test_reads_host_and_port(self) -> None:
        assert BrokerAddress.parse("127.0.0.1:1884") == BrokerAddress("127.0.0.1", 1884)

    def test_refuses_other_schemes(self) -> None:
        with pytest.raises(ValueError, match="scheme"):
            BrokerAddress.parse("http://broker")


class TestDecoding:
    def test_credential_is_taken_out_of_the_payload(self) -> None:
        message = Received(1, 1, "devices/d/readings", b'{"credential":"d.s","readings":[]}', 0)
        delivery = to_delivery(message)
        assert (delivery.device_id, delivery.credential) == ("d", "d.s")
        assert delivery.payload == {"readings": []}

    def test_a_missing_credential_is_empty_not_trusted(self) -> None:
        delivery = to_delivery(Received(1, 1, "devices/d/readings", b'{"readings":[]}', 0))
        assert delivery.credential == ""

    def test_undecodable_payloads_are_kept_for_the_dead_letter(self) -> None:
        delivery = to_delivery(Received(1, 1, "devices/d/readings", b"\xffnot json", 0))
        assert "undecodable" in delivery.payload
