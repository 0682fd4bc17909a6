"""A private PulseAudio daemon whose default microphone is a FIFO that the test writes into.

    with PulseServer(tmp_path) as pulse:   # PortAudio now sees `pulse` and `default`
        pulse.feed(pcm)                    # 16 kHz mono int16, played at real-time pace
        pulse.wait_played(timeout_s=10)

The daemon runs with its own HOME and XDG_RUNTIME_DIR under `tmp_dir` and listens on a unix socket
there; nothing of the user's own sound setup is touched. While the server is open,
`os.environ["PULSE_SERVER"]` points at it and PortAudio is re-initialised so its device list is
fresh (PortAudio scans devices only in Pa_Initialize); `close()` restores both.

A feeder thread writes the FIFO in 20 ms blocks at real-time pace: queued audio first, silence
whenever nothing is queued. It must keep writing until every stream recording from the FIFO is
closed: PulseAudio's pipe source produces nothing while its writer is idle, and PortAudio's
`stop()` then waits forever for the next buffer.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np

RATE_HZ = 16_000
BLOCK_MS = 20
BLOCK_SAMPLES = RATE_HZ * BLOCK_MS // 1000
# The FIFO's kernel buffer is shrunk to one page (≈128 ms of audio) so audio written while nobody
# records cannot pile up and reach a later recording seconds late.
PIPE_BYTES = 4096


def available() -> bool:
    """Whether the `pulseaudio` daemon and `pactl` are installed (Debian: pulseaudio,
    pulseaudio-utils)."""
    return shutil.which("pulseaudio") is not None and shutil.which("pactl") is not None


SKIP_REASON = "PulseAudio is not installed (Debian: apt install pulseaudio pulseaudio-utils)"


class PulseError(RuntimeError):
    pass


def reinit_portaudio() -> None:
    """Make PortAudio rescan devices (it does so only in Pa_Initialize, at import)."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


class PulseServer:
    """A private PulseAudio daemon: default source `mic` (fed from a FIFO), default sink `spk`."""

    def __init__(self, tmp_dir: Path, *, start_timeout_s: float = 15.0) -> None:
        self.dir = Path(tmp_dir) / "pulse"
        self.socket = self.dir / "native.sock"
        self.fifo = self.dir / "mic.fifo"
        self.log_path = self.dir / "daemon.log"
        self.server = f"unix:{self.socket}"
        self.start_timeout_s = start_timeout_s
        self.samples_written = 0  # blocks actually written to the FIFO, audio and silence
        self.samples_fed = 0  # audio queued with feed()
        self._proc: subprocess.Popen[bytes] | None = None
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._queued = 0
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        self._feeder_error: BaseException | None = None
        self._saved_env: dict[str, str | None] = {}
        self._env_set = False

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client subprocess that should use this server."""
        return {**os.environ, "PULSE_SERVER": self.server}

    def _daemon_env(self) -> dict[str, str]:
        home = self.dir / "home"
        runtime = self.dir / "runtime"
        for d in (home, runtime):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime),
                   XDG_CONFIG_HOME=str(home / ".config"))
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return env

    def start(self) -> PulseServer:
        if not available():
            raise PulseError(SKIP_REASON)
        self.dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > 100:  # sockaddr_un.sun_path is 108 bytes
            raise PulseError(f"socket path too long for a unix socket: {self.socket}")
        # module-pipe-source makes the FIFO itself and refuses one that already exists.
        script = self.dir / "daemon.pa"
        script.write_text(
            ".fail\n"  # a module that fails to load stops the daemon (an error, not a hang)
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-pipe-source source_name=mic file={self.fifo} "
            f"format=s16le rate={RATE_HZ} channels=1\n"
            "load-module module-null-sink sink_name=spk\n"
            "set-default-source mic\n"
            "set-default-sink spk\n"
        )
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                ["pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1",
                 "--use-pid-file=no", "--disallow-exit=no", "--realtime=no",
                 "--high-priority=no", "--log-target=stderr", "-n", "-F", str(script)],
                env=self._daemon_env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self._wait_ready()
            self._start_feeder()
            self._set_env()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise PulseError(
                    f"pulseaudio exited with status {self._proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            if self.socket.exists():
                try:
                    r = subprocess.run(["pactl", "info"], env=self.env, capture_output=True,
                                       text=True, timeout=5)
                except subprocess.TimeoutExpired:
                    last = "pactl info timed out"
                else:
                    if r.returncode == 0:
                        return
                    last = (r.stderr or r.stdout).strip()
            time.sleep(0.05)
        raise PulseError(
            f"pulseaudio did not answer `pactl info` within {self.start_timeout_s:.0f} s "
            f"({last or 'no socket'}):\n" + self.log_tail()
        )

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no daemon log)"
        return "\n".join(lines[-n:])

    def pactl(self, *args: str) -> str:
        r = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def _set_env(self) -> None:
        for key in ("PULSE_SERVER",):
            self._saved_env[key] = os.environ.get(key)
        os.environ["PULSE_SERVER"] = self.server
        self._env_set = True
        reinit_portaudio()

    def _restore_env(self) -> None:
        if not self._env_set:
            return
        self._env_set = False
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reinit_portaudio()

    def close(self) -> None:
        """Stop the feeder and the daemon; restore PULSE_SERVER and PortAudio's device list.

        Close every stream recording from this server first (the feeder must still be running
        while they stop)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._feeder is not None:
            self._feeder.join(1.0)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(["pactl", "exit"], env=self.env, capture_output=True, timeout=5)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._feeder is not None:
            self._feeder.join(5.0)  # a write blocked on a dead reader now fails with EPIPE
        self._restore_env()

    def kill(self) -> None:
        """Kill the daemon (SIGKILL) as a crash or an unplugged device would end it; `close()`
        still cleans up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the microphone ----------------------------------------------------------------------

    def feed(self, pcm: np.ndarray) -> None:
        """Queue 16 kHz mono int16 audio; it is written after what is already queued."""
        pcm = np.asarray(pcm)
        if pcm.ndim != 1 or pcm.dtype != np.int16:
            raise ValueError(f"expected 1-D int16 PCM, got {pcm.dtype} {pcm.shape}")
        if self._feeder_error is not None:
            raise PulseError(f"the FIFO feeder failed: {self._feeder_error!r}")
        with self._lock:
            self._queue.append(pcm.copy())
            self._queued += len(pcm)
            self.samples_fed += len(pcm)

    def wait_played(self, timeout_s: float) -> None:
        """Block until everything fed so far has been written to the FIFO."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._queued > 0:
                if self._feeder_error is not None:
                    raise PulseError(f"the FIFO feeder failed: {self._feeder_error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PulseError(
                        f"{self._queued / RATE_HZ:.2f} s of audio still unwritten after "
                        f"{timeout_s} s"
                    )
                self._lock.wait(min(left, 0.1))

    def _start_feeder(self) -> None:
        # The daemon holds the FIFO open read-write, so this open does not block; O_NONBLOCK
        # turns a missing reader into an error (ENXIO) instead of a hang.
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._feeder = threading.Thread(target=self._feed_loop, args=(fd,), name="pulse-feeder",
                                        daemon=True)
        self._feeder.start()

    def _next_block(self) -> np.ndarray:
        out = np.zeros(BLOCK_SAMPLES, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < BLOCK_SAMPLES and self._queue:
                head = self._queue[0]
                n = min(BLOCK_SAMPLES - filled, len(head))
                out[filled : filled + n] = head[:n]
                filled += n
                if n == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[n:]
            self._queued -= filled
            if self._queued == 0:
                self._lock.notify_all()
        return out

    def _feed_loop(self, fd: int) -> None:
        block_s = BLOCK_SAMPLES / RATE_HZ
        t_next = time.monotonic()
        try:
            while not self._stop.is_set():
                data = self._next_block().astype("<i2").tobytes()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self.samples_written += BLOCK_SAMPLES
                t_next += block_s
                delay = t_next - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.5:  # blocked for a long time (nobody recording): do not burst
                    t_next = time.monotonic()
        except OSError as exc:
            if not self._stop.is_set():
                self._feeder_error = exc
        finally:
            os.close(fd)
            with self._lock:
                self._lock.notify_all()
