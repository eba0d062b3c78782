"""Style networks: the published CycleGAN generator and the compact students."""
