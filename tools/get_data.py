"""Fetch or locate Fashion-MNIST for the README's main job and print the folder of verified files.

Order: a complete source that fashion_mnist() already finds ($ONNXTRAIN_DATA, the user cache,
/usr/share/datasets/fashion-mnist); else Debian's dataset-fashion-mnist package when running as root with
apt-get; else a download into the user cache. With --path, that folder only: its files, or a download into it.
Every file is checked against its SHA-256 before the folder is printed.

Usage:
    python tools/get_data.py [--path DIR] [--cache-dir DIR] [--base-url URL] [--no-apt]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from onnxtrain.datasets._fashion_mnist import fashion_mnist_folder
from onnxtrain.errors import OnnxtrainError

APT_PACKAGE = "dataset-fashion-mnist"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="use this folder only: the four files there, or a download into it")
    parser.add_argument("--cache-dir", help="download folder (default: the user cache)")
    parser.add_argument("--base-url", help="mirror to download from (default: $ONNXTRAIN_FASHION_MNIST_URL, Zalando's)")
    parser.add_argument("--no-apt", action="store_true", help="never install Debian's package")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        folder = _locate(args)
        if folder is None and args.path is None and not args.no_apt and _can_use_apt():
            _apt_install()
            folder = _locate(args)
        if folder is None:
            folder = fashion_mnist_folder(args.path, args.cache_dir, download=True, base_url=args.base_url)
    except OnnxtrainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def _locate(args: argparse.Namespace) -> Path | None:
    try:
        return fashion_mnist_folder(args.path, args.cache_dir, download=False)
    except FileNotFoundError:
        return None


def _can_use_apt() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install() -> None:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", APT_PACKAGE]
    print(f"Installing Debian's {APT_PACKAGE}: {' '.join(command)}", file=sys.stderr)
    if subprocess.run(command, env=environment, check=False).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run(["apt-get", "update"], env=environment, check=False)
        if subprocess.run(command, env=environment, check=False).returncode != 0:
            print(f"apt-get could not install {APT_PACKAGE}; downloading instead.", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
