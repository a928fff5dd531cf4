"""Entry point of the in-cell agent: ``python -E -s path/to/agent VERB ...``.

Runs inside a cell's interpreter (Python 3.6+, any TF 1.13+, or a runtime
cell's Keras / LiteRT / tflite-runtime without TF), so this package uses
Python 3.6 syntax, stdlib + numpy + the cell's TF or runtime only (each
imported where an item needs it), and imports its sibling modules as
top-level names (the directory is sys.path[0]).
"""
import faulthandler
import os
import sys
import warnings

# A crash in native code (a segfault in TF's converter or interpreter) prints
# the Python stack it happened in: the host records what the item was doing.
faulthandler.enable()

# Never write __pycache__ into the (possibly read-only, shared) agent directory;
# -E makes the interpreter ignore PYTHONDONTWRITEBYTECODE, so set it here.
sys.dont_write_bytecode = True
# Quiet TF's C++ logging before TF is imported; Python warnings are noise too.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")
# The cell's own console scripts come first on PATH: TF 1.x's TFLite converter
# runs `toco_from_protos` from there, and the venv is never "activated".
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

# Watch for a dead host from the start: importing TF takes seconds.
import watchdog  # noqa: E402
watchdog.start()

import verbs  # noqa: E402  (must follow the environment set-up above)

if __name__ == "__main__":
    sys.exit(verbs.main(sys.argv[1:]))
