"""Tiny person-detector files made by the tests: a SavedModel in the TF Object
Detection API convention and an ONNX graph in the Ultralytics YOLO layout,
each returning known boxes whatever the frame."""

import numpy as np
import tensorflow as tf


def od_api_saved_model(path, boxes, scores, classes, outputs=None):
    """A SavedModel whose serving_default answers the given normalized
    [ymin, xmin, ymax, xmax] boxes; `outputs`: other output names (a wrong layout)."""
    boxes = np.asarray(boxes, np.float32).reshape(1, -1, 4)
    scores = np.asarray(scores, np.float32).reshape(1, -1)
    classes = np.asarray(classes, np.float32).reshape(1, -1)

    class Detector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def __call__(self, images):
            zero = tf.cast(tf.reduce_sum(images[:, :1, :1, :1]), tf.float32) * 0.0
            result = {"detection_boxes": tf.constant(boxes) + zero, "detection_scores": tf.constant(scores),
                      "detection_classes": tf.constant(classes),
                      "num_detections": tf.constant([float(boxes.shape[1])])}
            if outputs is not None:
                result = {name: tf.constant(scores) + zero for name in outputs}
            return result

    module = Detector()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return str(path)


def yolo_onnx(path, output, size=64, input_shape=None):
    """An ONNX file with input `images` float [1, 3, size, size] whose only
    output is the constant `output` ((1, 4 + C, N) for the YOLO layout)."""
    import onnx  # optional dependency: imported only where used
    from onnx import (  # optional dependency: imported only where used
        TensorProto,
        helper,
        numpy_helper,
    )

    output = np.asarray(output, np.float32)
    shape = list(input_shape or [1, 3, size, size])
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=list(range(1, len(shape))), keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[numpy_helper.from_array(output, "table"),
                     numpy_helper.from_array(np.zeros(1, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def yolo_table(boxes_xyxy, class_scores, frame_hw, size=64):
    """(1, 4 + C, N): the frame's pixel boxes as letterboxed cx, cy, w, h (Ultralytics' arithmetic)."""
    height, width = frame_hw
    gain = min(size / height, size / width)
    pad_x = int(round((size - round(width * gain)) / 2 - 0.1))
    pad_y = int(round((size - round(height * gain)) / 2 - 0.1))
    b = np.asarray(boxes_xyxy, np.float32) * gain + np.asarray([pad_x, pad_y, pad_x, pad_y], np.float32)
    cxcywh = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]])
    return np.concatenate([cxcywh, np.asarray(class_scores, np.float32).T], axis=0)[None]
