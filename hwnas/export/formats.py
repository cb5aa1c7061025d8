"""Export formats (kept import-light: the CLI's --help reads it)."""

FORMATS = ("onnx", "tflite", "tflite-dynamic", "tflite-int8", "edgetpu")
