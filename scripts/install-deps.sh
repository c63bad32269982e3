#!/usr/bin/env bash
# System packages mmx builds against (Debian 12). Run as root (or through sudo).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  cmake g++ make pkg-config \
  libdnnl-dev nlohmann-json3-dev libutf8proc-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev \
  libcairo2-dev fonts-dejavu-core libcurl4-openssl-dev libssl-dev \
  zsh fish groff-base \
  libgtest-dev libgmock-dev libbenchmark-dev \
  python3-numpy
