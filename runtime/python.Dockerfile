# modelship/runtime-python: the runtime plus CPython 3.11 (Debian bookworm's), uv and the pinned base
# data-science stack (runtime/engines/python/base-stack.lock: numpy, scipy, scikit-learn, pandas, joblib,
# XGBoost, LightGBM). The operator runs it for `spec.bundle.format: python`. Same user and read-only root
# filesystem as modelship/runtime: a bundle's requirements.txt installs into the volume the operator mounts
# at /var/cache/modelship/python-envs. For extra libraries baked in, build FROM this image (see README).
# The Node base (Debian bookworm + Node 24 + npm); the local environment builds one of its own.
ARG NODE_IMAGE=node:24-bookworm-slim
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# As in runtime/Dockerfile: npm install with the committed lockfile (see the note there on npm ci), and
# onnxruntime-node's native library for the image's own platform only.
ARG TARGETARCH
RUN npm install --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && ort=node_modules/onnxruntime-node/bin/napi-v6 && arch=$([ "$TARGETARCH" = arm64 ] && echo arm64 || echo x64) \
 && find $ort -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} + \
 && find $ort/linux -mindepth 1 -maxdepth 1 ! -name $arch -exec rm -rf {} + \
 && test -f $ort/linux/$arch/onnxruntime_binding.node

FROM ${NODE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv libgomp1 \
 && rm -rf /var/lib/apt/lists/*
COPY runtime/engines/python/base-stack.lock /opt/modelship/base-stack.lock
# A virtual environment of the image's own (Debian's python3 is externally managed); uv installs the lock.
RUN python3 -m venv /opt/modelship/python \
 && /opt/modelship/python/bin/pip install --no-cache-dir uv==0.13.8 \
 && /opt/modelship/python/bin/uv pip install --no-cache --python /opt/modelship/python/bin/python -r /opt/modelship/base-stack.lock \
 && /opt/modelship/python/bin/python -c "import numpy, scipy, sklearn, pandas, joblib, xgboost, lightgbm"
ENV NODE_ENV=production \
    MODELSHIP_WORK_DIR=/var/lib/modelship \
    MODELSHIP_PORT=8080 \
    MODELSHIP_GRPC_PORT=8081 \
    MODELSHIP_PYTHON=/opt/modelship/python/bin/python \
    MODELSHIP_UV=/opt/modelship/python/bin/uv \
    MODELSHIP_PYTHON_ENV_DIR=/var/cache/modelship/python-envs \
    PATH=/opt/modelship/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_COMPILE_CACHE=/app/.compile-cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY common ./common
COPY runtime ./runtime
# The worker module (modelship._worker) and what bundles import (modelship.InvalidInput), stdlib only.
COPY sdk/python/modelship ./sdk/python/modelship
RUN node -e "require('node:module').enableCompileCache(process.env.NODE_COMPILE_CACHE); import('./runtime/server.ts').then(() => import('./runtime/app.ts'))" \
 && python3 -m compileall -q /app/sdk/python/modelship \
 && chmod -R a+rX /app/.compile-cache /app/sdk
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "runtime/main.ts"]
