"""The ByeGlassesGAN model: config, networks (Encoder, FaceDecoder, SegmentationDecoder, discriminators),
losses (paper eq. 3-8), one GAN training step, and its weights on disk."""
