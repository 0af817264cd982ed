"""gensc.client: the client side of the services, below the application and the evaluation.

send.py      ``send``: stream images to a sender, one record per image (retries, metrics)
report.py    report.json and the reconstructions beside it; the terminal table; resuming
metrics.py   PSNR and SSIM of one pair: the one definition report.json and ``gensc eval`` use
cli.py       ``gensc send`` and ``gensc health``; the client's flags
launch.py    the three services as local processes (the demo, benchmarks and tests)

A client process stays light: this package imports neither torch, diffusers nor transformers
(a contract in pyproject.toml).
"""
