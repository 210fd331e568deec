"""What a Ray node is asked before any worker starts there: whether it can import xmempp.

Sent by value (`ray.cloudpickle.register_pickle_by_value`), so that a node without xmempp can run it: a worker
sent by reference died there in Ray's deserialisation, and the user read Ray's tracebacks and "its worker died
twice (ActorDiedError)" (forty-ninth hostile round). Nothing else lives here: all this module imports must exist on
every node.
"""


def importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
