#!/bin/sh
# Make sure Fashion-MNIST is on disk: Debian's dataset-fashion-mnist package, installed with
# apt-get when we are root; otherwise say exactly how to get it.
set -e
DIR=/usr/share/datasets/fashion-mnist
if [ -n "$CONVTRAIN_DATA" ] && [ -d "$CONVTRAIN_DATA" ]; then
    exit 0
fi
if [ -f "$DIR/train-images-idx3-ubyte.gz" ] || [ -f "$DIR/train-images-idx3-ubyte" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Fashion-MNIST is missing: installing Debian's dataset-fashion-mnist"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null
    [ -f "$DIR/train-images-idx3-ubyte.gz" ] && exit 0
fi
cat >&2 <<MSG
Fashion-MNIST was not found in $DIR.
Install it with:   sudo apt-get install dataset-fashion-mnist
or put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and point to it with
data.path in the config or the CONVTRAIN_DATA environment variable.
MSG
exit 1
