"""The anymail tracking receiver: store the event in the inbox and return (STYLE.md §8).

Errors are not caught here: anymail lets them propagate, Django answers 500, and the
ESP retries. A 4xx would make some ESPs drop the event for good (reliability.md §4.3).
"""

from sequences.esp.inbox import esp_event_store


def store_tracking_event(sender, event, esp_name, **kwargs) -> None:
    esp_event_store(event, esp_name)
