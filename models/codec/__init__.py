"""The learned latent codec (issue 26): a variable-rate mean-scale hyperprior over the VAE latent,
coded deterministically with integer tables (gensc.models.codec.codec), stored next to its
profile's weights and tied to its VAE (gensc.models.codec.store). docs/codec.md describes it."""
