#!/usr/bin/env bash
# System packages mmx builds against, on Debian 12 or Ubuntu 24.04 (apt). Run it as yourself: it asks
# sudo for root when it is not root already (a container's root needs no sudo).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || { echo "install-deps: run as root, or install sudo" >&2; exit 1; }
  exec sudo -- "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
. /etc/os-release
# libjpeg-turbo's development package is named after its ABI, which differs between the two.
case "${ID:-debian}" in
  ubuntu) jpeg=libjpeg-turbo8-dev ;;
  *) jpeg=libjpeg62-turbo-dev ;;
esac
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  cmake g++ make pkg-config \
  libdnnl-dev nlohmann-json3-dev libutf8proc-dev libpcre2-dev zlib1g-dev libpng-dev "$jpeg" libwebp-dev libtiff-dev libgif-dev libexif-dev \
  libsqlite3-dev libhnswlib-dev libsleef-dev \
  libcairo2-dev fonts-dejavu-core libcurl4-openssl-dev libssl-dev ca-certificates \
  zsh fish groff-base \
  clang libclang-rt-dev libomp-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libcpp-httplib-dev curl nginx-light python3-kubernetes python3-yaml \
  python3-numpy python3-dev pybind11-dev python3-pybind11 python3-distributed python3-pil \
  python3-venv python3-pip python3-setuptools python3-wheel \
  chromium
