"""From a photo to a photo without glasses: detect faces and landmarks, align to the template,
run the generator (PyTorch or ONNX), paste back; reading and writing images."""
