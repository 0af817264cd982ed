"""The sender's models are shared by every stream: concurrent encodes give the packets of
sequential ones (a fast tokenizer or a model used by two threads at once can fail or mix)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gensc.common.wire.packet import to_wire


def test_concurrent_encodes_equal_sequential_ones(sender, photos):
    items = [(name, data, mode) for name, data in photos.items() for mode in ("text+latent", "key+text")]
    alone = [to_wire(sender.encode(data, mode=mode).packet) for _, data, mode in items]
    with ThreadPoolExecutor(len(items)) as pool:
        together = list(pool.map(lambda it: to_wire(sender.encode(it[1], mode=it[2]).packet), items))
    assert together == alone
