"""gensc.channel.proxy: the channel proxy service, a byte pipe between sender and receiver.

It runs the link simulator (gensc.channel.link) on every frame and knows nothing of the packet
layout: it imports neither the wire format (gensc.common.wire, gensc.common.modes) nor the models
(gensc.models), nor torch, diffusers or transformers (contracts in pyproject.toml), so the proxy
process stays light.

``service.py``: the gRPC servicer; ``cli.py``: ``gensc channel serve``.
"""
