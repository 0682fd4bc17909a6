#!/usr/bin/env bash
# Installs the system packages Daybook needs, on Debian/Ubuntu, when any is missing.
# Usage: installer/system-deps.sh [runtime|test]   (test adds what the test suite uses)
# On other platforms it prints what to install and exits 0.
set -euo pipefail

runtime=(libportaudio2 espeak-ng ffmpeg libgl1 libegl1 libxkbcommon-x11-0 libxcb-cursor0
         libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
         libxcb-xinerama0 libfontconfig1 libdbus-1-3 python3-venv
         build-essential cmake python3-dev)  # llama-cpp-python compiles llama.cpp
testing=(pulseaudio pulseaudio-utils xvfb x11-utils make desktop-file-utils)

want=("${runtime[@]}")
[ "${1:-runtime}" = "test" ] && want+=("${testing[@]}")

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  cat <<MSG
daybook: not a Debian/Ubuntu system; install these yourself if missing:
  macOS (Homebrew): brew install portaudio espeak-ng ffmpeg cmake (and Xcode's command-line tools)
  Fedora: sudo dnf install portaudio espeak-ng ffmpeg-free pulseaudio-utils gcc-c++ cmake python3-devel
  Windows: Visual Studio Build Tools (C++) and CMake, to compile llama-cpp-python; the Python
    wheels bundle PortAudio; pyttsx3 uses SAPI5; ffmpeg is optional
MSG
  exit 0
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "daybook: installing system packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
