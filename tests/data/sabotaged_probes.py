"""A probe module that breaks the agent's own loaders on purpose, for the
witness tests: the probe `sabotaged` (the zoo's dense model under another
name) loads fine in TensorFlow, but the agent's tf1_session and
import_graph_def loaders raise a made-up unknown-attr error for it after TF
loaded it. Its findings are ours, so a plain witness must not reproduce them.

Never list this module in a real matrix."""
import loaders
import zoo

FAKE = ("NodeDef mentions attr 'sabotaged' not in Op<name=MatMul; signature=a:T, b:T -> product:T>; "
        "NodeDef: {{node MatMul}}")


def _sabotage(name):
    formats, real = loaders.LOADERS[name]

    def broken(path, x, artifact):
        y = real(path, x, artifact)
        if artifact["probe"] == "sabotaged":
            raise loaders.Stage("load", ValueError(FAKE))
        return y

    loaders.LOADERS[name] = (formats, broken)


class Sabotaged(zoo.Dense):
    name = "sabotaged"


_sabotage("tf1_session")
_sabotage("import_graph_def")
PROBES = [Sabotaged()]
