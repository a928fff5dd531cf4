"""Which functions of a graph's library a TF 1.x Session load and its serving
run instantiate: the one rule both sides apply, the agent to TF's protobufs
(graphinfo.run_functions) and the host to its streamed summary of a model
file (sandbox/check/graph.py, Graph.run). Stdlib only, Python 3.6: the host
imports it as sandbox.agent.callgraph, the agent as callgraph."""
from typing import Callable, Iterable, Mapping, Set


def session_functions(count, roots, inputs, calls, bodies):
    # type: (int, Iterable[int], Callable[[int], Iterable[int]], Callable[[int], Iterable[str]], Mapping[str, Iterable[str]]) -> Set[str]
    """The functions called by the main-graph nodes that `roots` depend on,
    and by the bodies of those functions, recursively.

    Main-graph nodes are numbered 0 .. count - 1. roots: the nodes a run
    starts from (the serving signature's outputs, the restore op); inputs(i):
    the nodes node i reads, data and control inputs alike; calls(i): the names
    node i calls, its op and the functions its attrs name (f, body,
    then_branch, branches...); bodies: each function of the library -> the
    names its nodes call, likewise. A called name that is no function of the
    library (an op) is ignored."""
    seen = bytearray(count)  # a byte per node: the host's graphs can have millions
    todo = list(roots)
    called = []
    while todo:
        i = todo.pop()
        if seen[i]:
            continue
        seen[i] = 1
        todo.extend(inputs(i))
        called.extend(calls(i))
    found = set()  # type: Set[str]
    while called:
        name = called.pop()
        if name in bodies and name not in found:
            found.add(name)
            called.extend(bodies[name])
    return found
