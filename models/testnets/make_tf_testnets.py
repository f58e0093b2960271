#!/usr/bin/env python3
"""Build the converter's TensorFlow-exported test models: real tf2onnx
conversions of TFLite files, the route by which camera-photoplethysmography
pipelines bring MediaPipe-style face detectors to ONNX.

  tf_blaze     a BlazeFace-style detector: NHWC image [1, 48, 48, 3], a 5x5
               stride-2 Conv, BlazeBlocks (3x3 depthwise + 1x1 Conv, residual
               Add; at stride 2 a MaxPool and a channel Pad on the skip),
               two anchor grids (12x12 x 2, 6x6 x 6 = 504 anchors), outputs
               regressors [1, 504, 16] and raw face-score logits [1, 504, 1]
               (the application applies the sigmoid), float32 TFLite
  tf_blaze_int8  the same trained detector as a fully-integer TFLite file
               (int8 activations and weights, calibrated by the TFLite
               converter on the training images): tf2onnx writes
               QuantizeLinear/DequantizeLinear around every op and moves the
               int8 tensors through its Transposes, Reshapes and Concats;
               with it, TFLite's own int8 outputs on the tf_blaze test
               images (tf_blaze_int8_tflite_{0,1}.npy, int8 codes, in the
               ONNX model's output order)
  tf_prelu_int8  tf_dynrange's trained head as a fully-integer TFLite file
               with int8 input and output (`inference_input_type = tf.int8`,
               as microcontroller deployments use): an int8 graph input and
               output, PReLU between Q/DQ pairs; TFLite's int8 outputs on
               the tf_dynrange test images (tf_prelu_int8_tflite_0.npy)
  tf_dynrange  a PReLU detector head: ZeroPadding2D + valid stride-2 Conv
               (TF's "same" padding made explicit), ReLU6, Sigmoid score
               [1, 128, 1], from a TFLite file with dynamic-range int8
               weights (tf2onnx writes DequantizeLinear on every weight)

Both are trained briefly (seeded, CPU) on a synthetic task: find a bright
blob in a noisy image. tf2onnx keeps TFLite's output names
(`StatefulPartitionedCall:0`, ...) and starts the graph with the
NHWC -> NCHW Transpose. For each model: <name>.onnx, <name>_calib.npy and
<name>_test.npy (16 float32 NHWC images each). Every export is checked
against the TFLite interpreter with onnxruntime.

Needs TensorFlow and tf2onnx, which the other scripts do not (and CI does
not: the outputs are committed):

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 \
        onnxruntime==1.17.3 "numpy<2"
    TF_ENABLE_ONEDNN_OPTS=0 /tmp/tfenv/bin/python models/testnets/make_tf_testnets.py

(oneDNN's training kernels crashed TensorFlow 2.15 on this machine; with
TF_ENABLE_ONEDNN_OPTS=0 it trains.)
"""

import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx
from tensorflow.keras import layers as L

SEED = 20261205
N = 16


def blobs(rng, n, size):
    """Noisy images with one bright Gaussian blob in about half of them; the
    blob centres (NaN where there is none)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x = rng.normal(0.3, 0.08, (n, size, size, 3)).astype(np.float32)
    centres = np.full((n, 2), np.nan, np.float32)
    for i in range(n):
        if rng.random() < 0.5:
            cy, cx = rng.uniform(4, size - 4, 2)
            r = rng.uniform(2.5, 5.0)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            x[i] += blob[..., None] * rng.uniform(0.5, 0.9, 3).astype(np.float32)
            centres[i] = (cy, cx)
    return x, centres


def anchor_targets(centres, size, grids):
    """Per anchor (grid cell, anchors per cell): a score target (1 where the
    blob's centre is within a cell of the cell's centre) and 16 regression targets (the centre's
    offset from the cell's centre, in cells, repeated)."""
    scores, boxes = [], []
    for cells, per_cell in grids:
        step = size / cells
        gy, gx = np.mgrid[0:cells, 0:cells].astype(np.float32)
        acy, acx = (gy.ravel() + 0.5) * step, (gx.ravel() + 0.5) * step
        s = np.zeros((len(centres), cells * cells, per_cell), np.float32)
        b = np.zeros((len(centres), cells * cells, per_cell, 16), np.float32)
        for i, (cy, cx) in enumerate(centres):
            if np.isnan(cy):
                continue
            inside = (np.abs(acy - cy) <= step) & (np.abs(acx - cx) <= step)
            s[i, inside] = 1.0
            off = np.stack([(cy - acy) / step, (cx - acx) / step], -1)
            b[i] = np.tile(off, 8)[:, None, :]
        scores.append(s.reshape(len(centres), -1, 1))
        boxes.append(b.reshape(len(centres), -1, 16))
    return np.concatenate(boxes, 1), np.concatenate(scores, 1)


def blaze_block(x, out_ch, stride=1):
    in_ch = x.shape[-1]
    h = L.DepthwiseConv2D(3, strides=stride, padding="same")(x)
    h = L.Conv2D(out_ch, 1)(h)
    if stride == 2:
        x = L.MaxPooling2D(2)(x)
    if out_ch > in_ch:
        x = L.Lambda(lambda t: tf.pad(t, [[0, 0], [0, 0], [0, 0], [0, out_ch - in_ch]]))(x)
    return L.ReLU()(L.Add()([h, x]))


def tf_blaze():
    size, grids = 48, [(12, 2), (6, 6)]
    inp = L.Input((size, size, 3), batch_size=1, name="image")
    x = L.Conv2D(24, 5, strides=2, padding="same", activation="relu")(inp)  # 24
    x = blaze_block(x, 24)
    x = blaze_block(x, 32, 2)  # 12
    x12 = blaze_block(x, 40)
    x = blaze_block(x12, 48, 2)  # 6
    x6 = blaze_block(x, 48)
    c12 = L.Reshape((-1, 1))(L.Conv2D(2, 1)(x12))
    c6 = L.Reshape((-1, 1))(L.Conv2D(6, 1)(x6))
    r12 = L.Reshape((-1, 16))(L.Conv2D(32, 1)(x12))
    r6 = L.Reshape((-1, 16))(L.Conv2D(96, 1)(x6))
    scores = L.Concatenate(axis=1, name="classificators")([c12, c6])
    boxes = L.Concatenate(axis=1, name="regressors")([r12, r6])
    model = tf.keras.Model(inp, [boxes, scores])
    model.compile(
        tf.keras.optimizers.Adam(3e-3),
        ["mse", tf.keras.losses.BinaryCrossentropy(from_logits=True)],
    )
    return model, size, grids, None


def tf_dynrange():
    size, grids = 32, [(8, 2)]
    inp = L.Input((size, size, 3), batch_size=1, name="image")
    x = L.Conv2D(16, 3, strides=2, padding="same")(inp)  # 16
    x = L.PReLU(shared_axes=[1, 2])(x)
    h = L.Conv2D(16, 1)(L.DepthwiseConv2D(3, padding="same")(x))
    x = L.PReLU(shared_axes=[1, 2])(L.Add()([h, x]))
    x = L.Conv2D(24, 3, strides=2, padding="valid")(L.ZeroPadding2D(((0, 1), (0, 1)))(x))  # 8
    x = L.ReLU(6.0)(x)
    s = L.Reshape((-1, 1))(L.Conv2D(2, 1)(x))
    score = L.Activation("sigmoid", name="score")(s)
    model = tf.keras.Model(inp, score)
    model.compile(tf.keras.optimizers.Adam(3e-3), tf.keras.losses.BinaryCrossentropy())
    return model, size, grids, tf.lite.Optimize.DEFAULT


MODELS = [("tf_blaze", tf_blaze), ("tf_dynrange", tf_dynrange)]


def full_integer(model, representative, test, name, out, integer_io=False):
    """`model` as a fully-integer TFLite file through tf2onnx (with int8
    input and output when `integer_io`), and TFLite's int8 outputs on `test`
    in the ONNX model's output order."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([representative[i : i + 1]] for i in range(len(representative)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if integer_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    tflite = os.path.join(out, f"{name}.tflite")
    with open(tflite, "wb") as f:
        f.write(conv.convert())
    onnx_path = os.path.join(out, f"{name}.onnx")
    proto, _ = tf2onnx.convert.from_tflite(tflite, opset=13, output_path=onnx_path)
    interp = tf.lite.Interpreter(tflite)
    interp.allocate_tensors()
    os.remove(tflite)
    inp = interp.get_input_details()[0]
    outs = {o["name"]: o for o in interp.get_output_details()}
    codes = {o: [] for o in outs}
    for i in range(len(test)):
        x = test[i : i + 1]
        if inp["dtype"] == np.int8:
            scale, zp = inp["quantization"]
            x = np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        for o, d in outs.items():
            codes[o].append(interp.get_tensor(d["index"]))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for k, o in enumerate(proto.graph.output):
        if integer_io:
            np.save(os.path.join(out, f"{name}_tflite_{k}.npy"), np.concatenate(codes[o.name]))
            continue
        # TFLite dequantizes its outputs; back to the int8 codes, with the
        # parameters of the DequantizeLinear tf2onnx wrote for them.
        dq = next(n for n in proto.graph.node if n.output[0] == o.name)
        assert dq.op_type == "DequantizeLinear", dq.op_type
        scale, zp = inits[dq.input[1]], inits[dq.input[2]]
        v = np.concatenate(codes[o.name])
        c = np.round(v / scale + zp)
        assert np.abs(c - (v / scale + zp)).max() < 1e-3 and c.min() >= -128 and c.max() <= 127
        np.save(os.path.join(out, f"{name}_tflite_{k}.npy"), c.astype(np.int8))
    print(f"{name}: {os.path.getsize(onnx_path)} B, ops {sorted({n.op_type for n in proto.graph.node})}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    # One thread, deterministic kernels: the same files on every run.
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    for k, (name, make) in enumerate(MODELS):
        tf.keras.utils.set_random_seed(SEED + k)
        rng = np.random.default_rng(SEED + k)
        model, size, grids, optimization = make()
        x, centres = blobs(rng, 768, size)
        boxes, scores = anchor_targets(centres, size, grids)
        targets = [boxes, scores] if len(model.outputs) == 2 else scores
        model.fit(x, targets, epochs=10, batch_size=32, verbose=0)

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if optimization is not None:
            conv.optimizations = [optimization]
        tflite = os.path.join(args.out, f"{name}.tflite")
        with open(tflite, "wb") as f:
            f.write(conv.convert())
        onnx_path = os.path.join(args.out, f"{name}.onnx")
        proto, _ = tf2onnx.convert.from_tflite(tflite, opset=13, output_path=onnx_path)
        os.remove(tflite)

        calib, _ = blobs(rng, N, size)
        test, _ = blobs(rng, N, size)
        np.save(os.path.join(args.out, f"{name}_calib.npy"), calib)
        np.save(os.path.join(args.out, f"{name}_test.npy"), test)
        if name == "tf_blaze":
            full_integer(model, x[:256], test, f"{name}_int8", args.out)
        if name == "tf_dynrange":
            full_integer(model, x[:256], test, "tf_prelu_int8", args.out, integer_io=True)

        # The ONNX graph computes what the Keras model does.
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        feed = sess.get_inputs()[0].name
        for i in range(4):
            got = sess.run(None, {feed: test[i : i + 1]})
            want = model(test[i : i + 1])
            want = want if isinstance(want, list) else [want]
            # tf2onnx orders the outputs as TFLite does; match them by shape.
            for g in got:
                w = next(np.asarray(w) for w in want if np.asarray(w).shape == g.shape)
                tol = 0.05 if optimization is not None else 1e-3
                assert np.abs(g - w).max() <= tol * max(1.0, np.abs(w).max()), (name, i)
        ops = sorted({n.op_type for n in proto.graph.node})
        outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in proto.graph.output]
        print(f"{name}: {os.path.getsize(onnx_path)} B, ops {ops}, outputs {outs}")


if __name__ == "__main__":
    main()
