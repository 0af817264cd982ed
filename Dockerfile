# One Dockerfile for gensc's three services; EXTRAS picks what is installed: channel (the proxy:
# no torch), sender, receiver, all, or a list ("sender,receiver"); PACKAGES adds packages by name.
# The install reaches no package index: pip takes every package from deploy/wheels/$TORCH/, which
# deploy/compose/wheels.sh fills from requirements/lock.txt (the versions `make test` runs), and
# keeps the lock's pins (constraints.txt). `make images` does every step (docs/compose.md).
#   TORCH=cpu (default): the CPU wheel of torch 2.13.0.
#   TORCH=cuda: PyPI's CUDA build of the same torch, for a receiver on a GPU (docker-compose.gpu.yml;
#               deploy/compose/wheels.sh cuda first).
#   BASE: an image with Python 3.11 whose `python3 -m venv` works. The default is made without a
#         registry by deploy/compose/base-image.sh (Debian bookworm, debootstrap); where a registry
#         answers, --build-arg BASE=python:3.11-slim does the same.
ARG BASE=gensc-base:bookworm

FROM ${BASE} AS build
ARG EXTRAS=all
ARG PACKAGES=
ARG TORCH=cpu
# deploy/compose/build.sh keeps the newest build stage of each image and removes the others.
LABEL org.gensc.stage=build org.gensc.image="${EXTRAS} ${TORCH}"
COPY deploy/wheels/${TORCH} /wheels
RUN python3 -m venv /opt/gensc \
    && /opt/gensc/bin/pip install --quiet --no-index --find-links /wheels -c /wheels/constraints.txt \
       pip setuptools wheel
WORKDIR /src
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
RUN /opt/gensc/bin/pip install --quiet --no-cache-dir --no-index --find-links /wheels \
       -c /wheels/constraints.txt --no-build-isolation ".[$EXTRAS]" $PACKAGES \
    && /opt/gensc/bin/pip check
# The proxy compiles its link kernels (numba) as it starts: 7 s on a quiet 2-core machine, 30 s on a
# busy one. Started once here, it leaves them in numba's cache in the venv, and the service loads
# them instead (numba compiles again on a CPU unlike the build machine's).
RUN case ",$EXTRAS," in *,channel,* | *,all,*) \
      gensc=/opt/gensc/bin/gensc; \
      $gensc channel serve --host 127.0.0.1 --port 0 --port-file /tmp/port --receiver 127.0.0.1:9 & pid=$!; \
      while [ ! -s /tmp/port ] && kill -0 $pid; do sleep 0.2; done; \
      $gensc health "127.0.0.1:$(cat /tmp/port)" --timeout-s 600 && kill $pid && wait $pid \
      && rm /tmp/port ;; \
    esac

# The image: the base and the venv, nothing of the build (wheels, source, pip's cache).
FROM ${BASE}
ARG EXTRAS=all
ARG TORCH=cpu
LABEL org.opencontainers.image.title="gensc ($EXTRAS, torch $TORCH)" org.gensc.stage=image
COPY --from=build /opt/gensc /opt/gensc
ENV PATH=/opt/gensc/bin:$PATH PYTHONUNBUFFERED=1 HF_HOME=/cache/hf GENSC_CACHE=/cache/gensc
EXPOSE 50051 50052 50053
ENTRYPOINT ["gensc"]
