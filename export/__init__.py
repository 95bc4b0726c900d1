"""Export stage: ONNX (FP32 / mixed FP16) with verification, TensorRT engines and their metadata/cache, pretrained styles."""
