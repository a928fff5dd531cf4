"""An example user probe module (see README, "Adding a probe").

List it in matrix.toml:

    probe_modules = ["examples/my_probes.py"]
    probes = ["batchnorm", "softplus_mlp"]

It runs inside every cell, so: Python 3.6 syntax, numpy + tensorflow only.
`probes` is the agent's own module (the agent directory is on sys.path).
"""
import numpy as np

from probes import NoKeras, Probe


class SoftplusMLP(Probe):
    name = "softplus_mlp"
    input_shape = (4, 3)  # the reference input's shape, batch first
    # device = "GPU"  # only for a graph with GPU-only ops: reports then keep its loads
    #                 # on consumers without a GPU apart, as device findings

    def init_params(self, rng):
        return {"w": rng.normal(0.0, 0.5, (3, 2)).astype(np.float32),
                "b": np.zeros((2,), np.float32)}

    def forward(self, tf, params, x):
        # raw ops only: this runs in TF1 graph mode and under TF2 eager/tf.function
        return tf.nn.softplus(tf.matmul(x, params["w"]) + params["b"])

    def keras_model(self, keras, params):
        # optional: the same function as a Keras model, for the Keras formats
        if not hasattr(keras.layers, "Dense"):
            raise NoKeras("no Dense layer")
        dense = keras.layers.Dense(2, activation="softplus")
        inp = keras.Input(shape=self.input_shape[1:])
        model = keras.Model(inp, dense(inp))
        dense.set_weights([params["w"], params["b"]])
        return model


PROBES = [SoftplusMLP()]
