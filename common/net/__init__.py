"""gensc.common.net: the network plumbing every hop shares.

rpc.py       every gRPC server and channel (limits, keepalive, health, TLS, tokens, deadlines)
relay.py     forwarding a stream to a pool of downstream peers, answers matched by item id
convert.py   protobuf messages <-> gensc's plain objects
service.py   what every ``gensc <role> serve`` shares: gRPC flags and the serve loop
"""
