"""The channel contract lives in the SDK (``firebus.sdk.notify``); re-exported for this plugin's modules."""

from firebus.sdk.notify import ChannelContext, DeliveryError, Message, MqttPublish

__all__ = ["ChannelContext", "DeliveryError", "Message", "MqttPublish"]
