"""gensc.common.net: the network plumbing every hop shares.

rpc.py       every gRPC server and channel (health, interceptors, TLS, tokens, deadlines)
rpc_config.py RpcConfig: limits, timeouts, backpressure, pools, keepalive, TLS and token settings
relay.py     forwarding a stream to a pool of downstream peers, answers matched by item id
convert.py   protobuf messages <-> gensc's plain objects
service.py   what every ``gensc <role> serve`` shares: gRPC flags and the serve loop
"""
