"""The crash-point wrapper keeps the wrapped broker's shape: a group call only where the
broker has one (the Alpaca adapter sends one by one; the wrapper once claimed a
``submit_many`` it then could not make)."""

from workbench.session import crashpoints
from workbench.testing.sinks import ListSink


class _OneByOne:
    def submit(self, intent):
        return intent


class _Grouped(_OneByOne):
    def submit_many(self, intents):
        return list(intents)


def test_a_broker_without_a_group_call_stays_without_one():
    env = {crashpoints.CRASH_ENV: "fill:999"}
    _, broker = crashpoints.wrap(ListSink(), _OneByOne(), environ=env)
    assert not callable(getattr(broker, "submit_many", None))
    _, grouped = crashpoints.wrap(ListSink(), _Grouped(), environ=env)
    assert callable(getattr(grouped, "submit_many", None))


def test_without_the_variable_nothing_is_wrapped():
    sink, broker = ListSink(), _OneByOne()
    assert crashpoints.wrap(sink, broker, environ={}) == (sink, broker)
