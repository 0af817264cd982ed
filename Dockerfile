# One image for all three services; the extras pick what gets installed.
#   docker build --build-arg EXTRAS=channel -t gensc-channel .      (CPU-only proxy, no torch)
#   docker build --build-arg EXTRAS=all -t gensc .                   (sender / receiver)
# TORCH_INDEX selects the torch build: the CUDA default on PyPI, or
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu for a CPU-only sender.
FROM python:3.11-slim
ARG EXTRAS=all
ARG TORCH_INDEX=
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HOME=/cache/hf GENSC_CACHE=/cache/gensc
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY proto proto
COPY common common
COPY sender sender
COPY channel channel
COPY models models
COPY receiver receiver
COPY client client
COPY evaluation evaluation
COPY training training
COPY benchmarks benchmarks
COPY app app
RUN if [ "$EXTRAS" != "channel" ]; then \
      pip install ${TORCH_INDEX:+--index-url $TORCH_INDEX} "torch==2.13.0"; \
    fi && pip install ".[$EXTRAS]"
EXPOSE 50051 50052 50053
ENTRYPOINT ["gensc"]
