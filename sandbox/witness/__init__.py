"""Witnesses: every grouped finding of a report, re-run by a short standalone
script (plain TensorFlow / Keras / tf.lite calls, none of the agent's code) in
the consumer's environment. A finding its witness does not reproduce is a bug
of ours, not an incompatibility.

    scripts   the script of one load (format x loader), and what it needs to
              know of the artifact (signature keys, tensor names, input shape)
    verdict   does the witness fail the way the finding did?
    runs      which load witnesses each finding; run the missing ones in their
              consumers' environments; stored in the results store
"""
