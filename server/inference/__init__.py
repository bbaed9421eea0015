"""Model versions, onnxruntime sessions, the batcher, the cache and recommendations."""
