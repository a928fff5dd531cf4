"""The built-in probe zoo (see probes.py for the protocol). Each probe is raw TF
ops for the graph formats and, where the cell's Keras has the layers, a Keras
model with the same weights for the Keras formats."""
from typing import Any, Dict, Tuple

import numpy as np

import tfcompat
from probes import NoKeras, Probe, Unbuildable, register

EPSILON = 1e-3
F32 = np.float32
Params = Dict[str, Any]


def _normal(rng: np.random.RandomState, shape: Tuple[int, ...], scale: float = 0.5) -> np.ndarray:
    return rng.normal(0.0, scale, shape).astype(F32)


def _layer(keras: Any, name: str) -> Any:
    """keras.layers.<name>, or its experimental home in older Keras."""
    layers = keras.layers
    found = getattr(layers, name, None) or getattr(getattr(layers, "experimental", None), name, None)
    if found is None:
        raise NoKeras("this Keras has no layers.%s" % name)
    return found


def _model(keras: Any, shape: Tuple[int, ...], *layers: Any) -> Any:
    inp = keras.Input(shape=shape[1:])
    out = inp
    for layer in layers:
        out = layer(out)
    return keras.Model(inp, out)


def _sgd(params: Params, names: Tuple[str, ...], grads: Any, lr: float) -> Any:
    return [params[n].assign_sub(lr * g) for n, g in zip(names, grads)]


class _Normalized(Probe):
    """A linear map + BatchNorm, trained so the moving statistics move far from
    their initial 0/1, exported in inference mode. `mistakes`: what a loader
    that runs BatchNorm in training mode, or lost the moving statistics, gives."""

    train_steps = 5
    momentum = 0.9
    trainable = ("kernel", "scale", "offset")
    mistakes = ("training_mode", "lost_moving_statistics")
    axes: Tuple[int, ...] = (0,)

    def linear(self, tf: Any, params: Params, x: Any) -> Any:
        raise NotImplementedError

    def normalize(self, tf: Any, params: Params, h: Any, mean: Any, variance: Any) -> Any:
        return tf.nn.batch_normalization(h, mean, variance, params["offset"], params["scale"], EPSILON)

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        return self.normalize(tf, params, self.linear(tf, params, x), params["moving_mean"],
                              params["moving_variance"])

    def mistaken_forward(self, tf: Any, params: Params, x: Any, name: str) -> Any:
        h = self.linear(tf, params, x)
        if name == "training_mode":
            mean, variance = tf.nn.moments(h, list(self.axes))
            return tf.nn.batch_normalization(h, mean, variance, params["offset"], params["scale"], EPSILON)
        channels = int(params["offset"].get_shape()[0])  # TF 1.0 variables have no .shape
        return self.normalize(tf, params, h, tf.zeros([channels]), tf.ones([channels]))

    def train_step(self, ctx: Any, params: Params, x: np.ndarray) -> Any:
        tf = ctx.tf

        def loss_fn() -> Tuple[Any, Any]:
            h = self.linear(tf, params, x)
            mean, variance = tf.nn.moments(h, list(self.axes))
            y = tf.nn.batch_normalization(h, mean, variance, params["offset"], params["scale"], EPSILON)
            return tf.reduce_mean(tf.square(y - 0.5)), (mean, variance)

        (mean, variance), grads = ctx.gradients(loss_fn, [params[n] for n in self.trainable])
        m = self.momentum
        return ctx.group(_sgd(params, self.trainable, grads, 0.1) + [
            params["moving_mean"].assign(m * params["moving_mean"] + (1.0 - m) * mean),
            params["moving_variance"].assign(m * params["moving_variance"] + (1.0 - m) * variance),
        ])

    def state_report(self, before: Dict[str, np.ndarray], after: Dict[str, np.ndarray]) -> Dict[str, Any]:
        mean_moved = float(np.max(np.abs(after["moving_mean"] - before["moving_mean"])))
        var_moved = float(np.max(np.abs(after["moving_variance"] - before["moving_variance"])))
        return {
            "trained": mean_moved > 1e-3 and var_moved > 1e-3,
            "steps": self.train_steps,
            "max_abs_moving_mean": float(np.max(np.abs(after["moving_mean"]))),
            "max_abs_moving_mean_change": mean_moved,
            "max_abs_moving_variance_change": var_moved,
        }

    def _bn_weights(self, params: Params) -> list:
        return [params["scale"], params["offset"], params["moving_mean"], params["moving_variance"]]

    @staticmethod
    def _bn_params(rng: np.random.RandomState, channels: int) -> Dict[str, np.ndarray]:
        return {"scale": rng.uniform(0.5, 1.5, (channels,)).astype(F32),
                "offset": rng.uniform(-0.5, 0.5, (channels,)).astype(F32),
                "moving_mean": np.zeros((channels,), F32), "moving_variance": np.ones((channels,), F32)}


class BatchNorm(_Normalized):
    """Conv2D 3x3 (3->4 channels) + fused BatchNorm (FusedBatchNorm or V3 by TF build)."""

    name = "batchnorm"
    input_shape = (2, 6, 6, 3)
    axes = (0, 1, 2)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        params = {"kernel": (rng.normal(0.0, 0.5, (3, 3, 3, 4)) + 0.1).astype(F32)}
        params.update(self._bn_params(rng, 4))
        return params

    def train_batch(self, rng: np.random.RandomState) -> np.ndarray:
        # Shifted and scaled so batch statistics (and so the moving ones) are far from 0/1.
        return (rng.uniform(0.0, 2.0, (8, 6, 6, 3)) + 0.5).astype(F32)

    def linear(self, tf: Any, params: Params, x: Any) -> Any:
        return tf.nn.conv2d(x, params["kernel"], [1, 1, 1, 1], "SAME")

    def normalize(self, tf: Any, params: Params, h: Any, mean: Any, variance: Any) -> Any:
        y, _, _ = tfcompat.fused_batch_norm(tf)(h, params["scale"], params["offset"], mean=mean,
                                                variance=variance, epsilon=EPSILON, is_training=False)
        return y

    def keras_model(self, keras: Any, params: Params) -> Any:
        conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
        bn = keras.layers.BatchNormalization(epsilon=EPSILON)
        model = _model(keras, self.input_shape, conv, bn)
        conv.set_weights([params["kernel"]])
        bn.set_weights(self._bn_weights(params))
        return model


class BatchNormInference(_Normalized):
    """seeds/004: Dense + BatchNorm trained on data far from the reference inputs,
    so BatchNorm in training mode, or with lost moving statistics, is far off."""

    name = "bn_inference"
    input_shape = (4, 5)
    train_steps = 12
    momentum = 0.6

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        params = {"kernel": _normal(rng, (5, 6)), "bias": _normal(rng, (6,), 0.1)}
        params.update(self._bn_params(rng, 6))
        return params

    def train_batch(self, rng: np.random.RandomState) -> np.ndarray:
        return rng.normal(3.0, 2.0, (32, 5)).astype(F32)

    def linear(self, tf: Any, params: Params, x: Any) -> Any:
        return tf.matmul(x, params["kernel"]) + params["bias"]

    def keras_model(self, keras: Any, params: Params) -> Any:
        dense = keras.layers.Dense(6)
        bn = keras.layers.BatchNormalization(epsilon=EPSILON)
        model = _model(keras, self.input_shape, dense, bn)
        dense.set_weights([params["kernel"], params["bias"]])
        bn.set_weights(self._bn_weights(params))
        return model


class BatchMatMul(Probe):
    """Rank-3 matmul: x [2,3,4] @ w [2,4,5] (BatchMatMul or BatchMatMulV2 by TF build)."""

    name = "batch_matmul"
    input_shape = (2, 3, 4)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"weights": rng.normal(0.0, 1.0, (2, 4, 5)).astype(F32)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        return tf.matmul(x, params["weights"])


class Conv2D(Probe):
    """Conv2D 3x3 VALID + bias + ReLU, then 2x2 max pooling."""

    name = "conv2d"
    input_shape = (2, 8, 8, 2)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"kernel": _normal(rng, (3, 3, 2, 3)), "bias": _normal(rng, (3,), 0.1)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, params["kernel"], [1, 1, 1, 1], "VALID"), params["bias"]))
        return tf.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")

    def keras_model(self, keras: Any, params: Params) -> Any:
        conv = keras.layers.Conv2D(3, 3, padding="valid", activation="relu")
        model = _model(keras, self.input_shape, conv, keras.layers.MaxPooling2D(2))
        conv.set_weights([params["kernel"], params["bias"]])
        return model


class Dense(Probe):
    """Two dense layers: tanh(x W1 + b1) W2 + b2."""

    name = "dense"
    input_shape = (3, 5)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"w1": _normal(rng, (5, 4)), "b1": _normal(rng, (4,), 0.1),
                "w2": _normal(rng, (4, 3)), "b2": _normal(rng, (3,), 0.1)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        return tf.matmul(tf.tanh(tf.matmul(x, params["w1"]) + params["b1"]), params["w2"]) + params["b2"]

    def keras_model(self, keras: Any, params: Params) -> Any:
        first, second = keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)
        model = _model(keras, self.input_shape, first, second)
        first.set_weights([params["w1"], params["b1"]])
        second.set_weights([params["w2"], params["b2"]])
        return model


class Quantizable(Probe):
    """Conv2D 3x3 (8->16, relu) then a dense layer (1024->8): weights large
    enough (>= 1024 elements each) that TFLite's post-training quantization
    quantizes them, so the tflite_dynamic / tflite_int8 formats hold int8."""

    name = "quantizable"
    input_shape = (2, 8, 8, 8)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"kernel": _normal(rng, (3, 3, 8, 16), 0.2), "bias": _normal(rng, (16,), 0.1),
                "w": _normal(rng, (1024, 8), 0.05), "b": _normal(rng, (8,), 0.1)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        h = tf.nn.relu(tf.nn.conv2d(x, params["kernel"], [1, 1, 1, 1], "SAME") + params["bias"])
        return tf.matmul(tf.reshape(h, [self.input_shape[0], 1024]), params["w"]) + params["b"]

    def keras_model(self, keras: Any, params: Params) -> Any:
        conv = keras.layers.Conv2D(16, 3, padding="same", activation="relu")
        dense = keras.layers.Dense(8)
        model = _model(keras, self.input_shape, conv, keras.layers.Reshape((1024,)), dense)
        conv.set_weights([params["kernel"], params["bias"]])
        dense.set_weights([params["w"], params["b"]])
        return model


class _Recurrent(Probe):
    """A recurrent layer over 4 steps, last hidden state out; a tf.while_loop in
    raw ops (Enter/Exit/Merge in TF1 graphs, While in TF2 functions)."""

    input_shape = (2, 4, 3)
    units = 5
    gates = 1

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        n = self.units * self.gates
        return {"kernel": _normal(rng, (3, n)), "recurrent_kernel": _normal(rng, (self.units, n)),
                "bias": _normal(rng, self.bias_shape(), 0.1)}

    def bias_shape(self) -> Tuple[int, ...]:
        return (self.units * self.gates,)

    def step(self, tf: Any, params: Params, xt: Any, state: Tuple[Any, ...]) -> Tuple[Any, ...]:
        raise NotImplementedError

    def state_size(self) -> int:
        return 1

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        steps = self.input_shape[1]
        xs = tf.transpose(x, [1, 0, 2])
        zeros = tf.zeros([self.input_shape[0], self.units])
        state0 = tuple(zeros for _ in range(self.state_size()))

        def body(t: Any, *state: Any) -> Any:
            return (t + 1,) + tuple(self.step(tf, params, tf.gather(xs, t), state))

        final = tf.while_loop(lambda t, *s: t < steps, body, (tf.constant(0),) + state0)
        return final[1]


class LSTM(_Recurrent):
    """Keras-compatible LSTM (gates i, f, c, o; sigmoid recurrent activation)."""

    name = "lstm"
    gates = 4

    def state_size(self) -> int:
        return 2

    def step(self, tf: Any, params: Params, xt: Any, state: Tuple[Any, ...]) -> Tuple[Any, ...]:
        h, c = state
        z = tf.matmul(xt, params["kernel"]) + tf.matmul(h, params["recurrent_kernel"]) + params["bias"]
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def keras_model(self, keras: Any, params: Params) -> Any:
        layer = keras.layers.LSTM(self.units, recurrent_activation="sigmoid")
        model = _model(keras, self.input_shape, layer)
        layer.set_weights([params["kernel"], params["recurrent_kernel"], params["bias"]])
        return model


class GRU(_Recurrent):
    """Keras-compatible GRU with reset_after=True (gates z, r, h)."""

    name = "gru"
    gates = 3

    def bias_shape(self) -> Tuple[int, ...]:
        return (2, self.units * self.gates)

    def step(self, tf: Any, params: Params, xt: Any, state: Tuple[Any, ...]) -> Tuple[Any, ...]:
        (h,) = state
        xz, xr, xh = tf.split(tf.matmul(xt, params["kernel"]) + params["bias"][0], 3, axis=1)
        hz, hr, hh = tf.split(tf.matmul(h, params["recurrent_kernel"]) + params["bias"][1], 3, axis=1)
        z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
        return (z * h + (1.0 - z) * tf.tanh(xh + r * hh),)

    def keras_model(self, keras: Any, params: Params) -> Any:
        layer = keras.layers.GRU(self.units, recurrent_activation="sigmoid", reset_after=True)
        model = _model(keras, self.input_shape, layer)
        layer.set_weights([params["kernel"], params["recurrent_kernel"], params["bias"]])
        return model


def _in_session_graph(tf: Any) -> bool:
    """Whether ops are being added to a TF1 Graph run by a Session (not traced
    into a tf.function, not executed eagerly)."""
    if tfcompat.eager(tf) and tf.executing_eagerly():
        return False
    return type(tfcompat.v1(tf).get_default_graph()).__name__ != "FuncGraph"


def _gpus(tf: Any) -> int:
    lister = tfcompat.lookup(tf, "config.list_physical_devices") or tfcompat.lookup(
        tf, "config.experimental.list_physical_devices")
    if lister is not None:
        return len(lister("GPU"))
    from tensorflow.python.client import device_lib
    return sum(1 for d in device_lib.list_local_devices() if d.device_type == "GPU")


class CudnnLSTM(Probe):
    """An LSTM as the cuDNN op CudnnRNNV3, built explicitly: the op is
    registered in CPU builds, its kernels only in GPU builds, so a graph holding
    it exports on CPU and fails to run on a CPU consumer (a missing kernel).
    The reference outputs come from the same LSTM in plain ops, with the
    weights laid out in cuDNN's canonical order (input weights W_i, W_f, W_c,
    W_o, recurrent R_i..R_o, then their biases)."""

    name = "cudnn_lstm"
    device = "GPU"  # CudnnRNNV3 has GPU kernels only
    input_shape = (2, 4, 3)  # batch, time, features
    units = 4

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        u, n = self.units, self.input_shape[2]
        size = 4 * u * n + 4 * u * u + 8 * u
        return {"params": _normal(rng, (size,), 0.3)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        op = tfcompat.lookup(tf, "raw_ops.CudnnRNNV3")
        if op is None:
            raise Unbuildable("this TensorFlow has no tf.raw_ops.CudnnRNNV3")
        if _in_session_graph(tf) and not _gpus(tf):
            raise Unbuildable("a TF1 Session places every node of its graph when it first runs, "
                              "and this build has no kernel for CudnnRNNV3 on any device it sees")
        batch, time, _ = self.input_shape
        zeros = tf.zeros([1, batch, self.units])
        outputs = op(input=tf.transpose(x, [1, 0, 2]), input_h=zeros, input_c=zeros, params=params["params"],
                     sequence_lengths=tf.fill([batch], time), rnn_mode="lstm", input_mode="linear_input",
                     direction="unidirectional", is_training=False)
        return outputs[1][0]  # output_h of the one layer: [batch, units]

    def reference(self, tf: Any, params: Params, x: Any) -> Any:
        u, n = self.units, self.input_shape[2]
        flat = params["params"]
        w = tf.reshape(flat[:4 * u * n], [4, u, n])
        r = tf.reshape(flat[4 * u * n:4 * u * n + 4 * u * u], [4, u, u])
        b = tf.reshape(flat[4 * u * n + 4 * u * u:], [2, 4, u])
        h = c = tf.zeros([self.input_shape[0], u])
        for t in range(self.input_shape[1]):
            xt = x[:, t, :]
            gates = [tf.matmul(xt, w[k], transpose_b=True) + tf.matmul(h, r[k], transpose_b=True) + b[0, k] + b[1, k]
                     for k in range(4)]
            i, f, g, o = tf.sigmoid(gates[0]), tf.sigmoid(gates[1]), tf.tanh(gates[2]), tf.sigmoid(gates[3])
            c = f * c + i * g
            h = o * tf.tanh(c)
        return h


class Einsum(Probe):
    """tf.einsum('bij,jk->bik') (the Einsum op where TF has it); Keras EinsumDense."""

    name = "einsum"
    input_shape = (2, 3, 4)
    equation = "bij,jk->bik"

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"kernel": _normal(rng, (4, 5))}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        return tf.einsum(self.equation, x, params["kernel"])

    def keras_model(self, keras: Any, params: Params) -> Any:
        layer = _layer(keras, "EinsumDense")(self.equation, output_shape=(3, 5))
        model = _model(keras, self.input_shape, layer)
        layer.set_weights([params["kernel"]])
        return model


class LayerNorm(Probe):
    """Layer normalization over the last axis (epsilon 1e-3)."""

    name = "layernorm"
    input_shape = (3, 6)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"gamma": rng.uniform(0.5, 1.5, (6,)).astype(F32), "beta": _normal(rng, (6,), 0.3)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        variance = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
        rsqrt = getattr(getattr(tf, "math", None), "rsqrt", None) or tf.rsqrt
        return (x - mean) * rsqrt(variance + EPSILON) * params["gamma"] + params["beta"]

    def keras_model(self, keras: Any, params: Params) -> Any:
        layer = _layer(keras, "LayerNormalization")(epsilon=EPSILON)
        model = _model(keras, self.input_shape, layer)
        layer.set_weights([params["gamma"], params["beta"]])
        return model


class Attention(Probe):
    """Multi-head self-attention (2 heads of 3) with the weight layout of Keras'
    MultiHeadAttention: raw reshape/transpose/batched matmul/softmax ops."""

    name = "attention"
    input_shape = (2, 4, 6)
    heads, key_dim = 2, 3

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        d, h, k = self.input_shape[2], self.heads, self.key_dim
        params = {}
        for p in "qkv":
            params["w" + p], params["b" + p] = _normal(rng, (d, h, k)), _normal(rng, (h, k), 0.1)
        params["wo"], params["bo"] = _normal(rng, (h, k, d)), _normal(rng, (d,), 0.1)
        return params

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        b, t, d = self.input_shape
        h, k = self.heads, self.key_dim
        flat = tf.reshape(x, [b * t, d])

        def project(p: str) -> Any:
            y = tf.matmul(flat, tf.reshape(params["w" + p], [d, h * k])) + tf.reshape(params["b" + p], [h * k])
            return tf.transpose(tf.reshape(y, [b, t, h, k]), [0, 2, 1, 3])

        q = project("q") * (1.0 / float(np.sqrt(k)))
        scores = tf.nn.softmax(tf.matmul(q, project("k"), transpose_b=True))
        o = tf.reshape(tf.transpose(tf.matmul(scores, project("v")), [0, 2, 1, 3]), [b * t, h * k])
        return tf.reshape(tf.matmul(o, tf.reshape(params["wo"], [h * k, d])) + params["bo"], [b, t, d])

    def keras_model(self, keras: Any, params: Params) -> Any:
        mha = _layer(keras, "MultiHeadAttention")(num_heads=self.heads, key_dim=self.key_dim)
        inp = keras.Input(shape=self.input_shape[1:])
        model = keras.Model(inp, mha(inp, inp))
        for p, dense in (("q", "_query_dense"), ("k", "_key_dense"), ("v", "_value_dense"), ("o", "_output_dense")):
            getattr(mha, dense).set_weights([params["w" + p], params["b" + p]])
        return model


class Flex(Probe):
    """A dense layer into sinh. TFLite has no builtin SINH, so the probe's
    TFLite export needs select TF ops (the tflite_flex format: a FlexSinh
    custom op the Flex delegate runs with TF's own kernel); the builtin-only
    tflite format cannot express it. An interpreter without the Flex delegate
    (tflite-runtime, LiteRT, TF <= 2.2's) refuses it, naming FlexSinh."""

    name = "flex"
    input_shape = (3, 4)

    def init_params(self, rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        return {"w": _normal(rng, (4, 3)), "b": _normal(rng, (3,), 0.1)}

    def forward(self, tf: Any, params: Params, x: Any) -> Any:
        sinh = getattr(getattr(tf, "math", None), "sinh", None) or tf.sinh
        return sinh(tf.matmul(x, params["w"]) + params["b"])


for _probe in (BatchNorm(), BatchMatMul(), Conv2D(), Dense(), LSTM(), GRU(), Einsum(), LayerNorm(),
               Attention(), BatchNormInference(), Quantizable(), CudnnLSTM(), Flex()):
    register(_probe)
