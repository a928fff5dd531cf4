"""Will a model load in other releases? Answered from the model's own bytes,
without TensorFlow and without an environment (`sandbox check`), and the
static prediction each measured load of a report carries.

readers (which reader a model file takes, and its verdicts) -> graphfile (a
SavedModel or frozen GraphDef, read as a protobuf stream by graph and
protowire), kerasfile (a .keras
or .h5 file's config), tflitefile (a .tflite file's op versions) -> verdicts
(one per loader of a release, from its stored registry) -> static (the
loader model: which missing ops and unknown attrs fail which loader)."""
