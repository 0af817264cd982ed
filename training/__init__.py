"""gensc.training: training gensc's own models, above the evaluation and below the benchmarks.

finetune.py          ``gensc finetune``: a LoRA adapter for the receiver, trained on packets that
                     crossed the real link (finetune_config.py: its settings; finetune_data.py:
                     its examples; lora_trainer.py: the training loop)
train_mini.py        ``gensc train-mini``: the ``mini`` profile's VAE and denoiser, on the CPU
"""
