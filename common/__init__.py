"""gensc.common: the base every part may use; it imports no part (a contract in pyproject.toml).

wire/        the wire format: packet (header, sections, salvage, sanity), the modes' table,
             latent quantisation, section codecs, cleaning, the classic baseline
modes/       the modes' code: one object per mode, the sender's build beside the receiver's rebuild
net/         network plumbing: gRPC servers and channels, relaying to pools, proto conversion,
             the serve loop and its flags
config.py    the one config mechanism (frozen dataclasses: checks, dict round trip, CLI flags), AUTO
errors.py    domain exceptions and the one exception -> status map
files.py     the one JSON writer and safe file names
images.py    the one image decoder, the one RGB check, resizing, PNG
latent.py    the receiver's fill of unknown latent values
ranges.py    value lists on the command line (start:stop:step)
timing.py    stage timers
"""
