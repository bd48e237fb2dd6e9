#!/bin/sh
# Installs the Debian packages Block Builder uses, when running as root and they are missing.
# graphviz: auto-layout and SVG/PNG diagrams; xvfb + xcb libs: a real window on a headless box;
# dataset-fashion-mnist: offline training data; texlive-latex-base + texlive-pictures: pdflatex and TikZ, which
# compile the paper figures' .tex export (the tests check it does).
set -e
command -v dpkg-query >/dev/null 2>&1 || exit 0
missing=""
for p in graphviz xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libegl1 libxkbcommon-x11-0 dataset-fashion-mnist \
         texlive-latex-base texlive-pictures; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian packages:$missing"
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || \
        echo "warning: could not install some of:$missing (the features that need them will say so)"
else
    echo "note: Debian packages missing:$missing (run as root, or install them, for diagrams and offline data)"
fi
