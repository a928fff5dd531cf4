"""How keras2_lambda.h5 and keras3_lambda.keras were written (the fuzz test's
Keras seeds): `python make_keras_lambda.py OUT` with the Python of a TF 2.15
cell (tf.keras is Keras 2: its .h5 is keras2_lambda.h5) and of a TF 2.18 cell
(Keras 3: its .keras is keras3_lambda.keras)."""
import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf  # noqa: E402

k = tf.keras
inp = k.Input((3,))
x = k.layers.Dense(2, activation="relu")(inp)
x = k.layers.BatchNormalization()(x)
x = k.layers.Lambda(lambda t: t * 2.0)(x)
k.Model(inp, x).save(sys.argv[1] + "/lam.h5")
k.Model(inp, x).save(sys.argv[1] + "/lam.keras")
