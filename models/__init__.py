"""gensc.models: the model side, below the sender and the receiver.

profiles.py         which weights a profile names (plain data: a client reads it)
loading.py          ``from_pretrained``, the one path that loads every model; profile resolution
quantization.py     weight-quantisation schemes and the ``--quantize`` setting (QuantConfig)
load_quantized.py   ``load_component``: a model loaded with its scheme applied, and the cache
tiny.py             random-weight ``tiny`` and ``sd15-shapes`` builders (offline, from configs)
mini.py, weights/   the ``mini`` profile: its photo split and its committed weights
sender.py           the sender's models: BLIP captioner, SD VAE encoder
receiver.py         the receiver's models: SD img2img, blend, txt2img, VAE decode, in batches
flags.py            the model flags (``--profile``, ``--sd-model``, ``--device``, ``--quantize``...)

The channel proxy never imports this package (a contract in pyproject.toml).
"""
