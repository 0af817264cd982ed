"""gensc.common.wire: the wire format, byte by byte, and what is sent in it.

packet.py    the packet: ``Packet`` -> ``encode`` -> ``Wire`` bytes; ``parse`` -> ``ParsedPacket``
header.py    the header's fields, flags and checks          sections.py  the body's sections, blocks, planes
salvage.py   reading a damaged body                         sanity.py    absurd raw float values
modes.py     the modes' table (names, wire ids, what each sends; no mode code, no Pillow)
quant.py     uniform latent quantisation (the latent codec) codecs.py    lossless section codecs
clean.py     estimates of damaged blocks' codes             classic.py   the JPEG/WebP baseline

Importing this package loads nothing: import the module you need.
"""
