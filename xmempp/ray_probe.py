"""What a Ray node is asked before any worker starts there: whether it can import what a worker imports.

Sent by value (`ray.cloudpickle.register_pickle_by_value`), so that a node without xmempp, or without one of its
packages, can run it: a worker sent by reference died there in Ray's deserialisation, and the user read Ray's
tracebacks and "its worker died twice (ActorDiedError)" (forty-ninth and fiftieth hostile rounds). Nothing else
lives here: all this module imports must exist on every node.
"""


def import_problem(modules: list[str]) -> str | None:
    """Why the first of `modules` that cannot be imported here cannot be (the error's words); None when all can."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # any failure of a node's install: its words name what to fix there
            return str(error) if isinstance(error, ImportError) else f"{type(error).__name__}: {error}"
    return None
