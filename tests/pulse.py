"""A private PulseAudio daemon whose default microphone is a FIFO that the test writes into.

    with PulseServer(tmp_path) as pulse:   # PortAudio now sees `pulse` and `default`
        pulse.feed(pcm)                    # 16 kHz mono int16, played at real-time pace
        pulse.wait_played(timeout_s=10)

The daemon runs with its own HOME and XDG_RUNTIME_DIR under `tmp_dir` and listens on a unix socket
there; nothing of the user's own sound setup is touched. While the server is open,
`os.environ["PULSE_SERVER"]` points at it and PortAudio is re-initialised so its device list is
fresh (PortAudio scans devices only in Pa_Initialize); `close()` restores both.

`unplug()` and `plug()` remove the microphone and bring it back (same name, the default again);
`kill()` and `restart()` crash the daemon and start it again on the same socket. Neither
re-initialises PortAudio: the code under test must find the device again by itself.

A feeder writes the FIFO in 20 ms blocks at real-time pace: queued audio first, silence whenever
nothing is queued. It must keep writing until every stream recording from the FIFO is closed:
PulseAudio's pipe source produces nothing while its writer is idle, and PortAudio's `stop()` then
waits forever for the next buffer.

The feeder is a small process of its own, not a thread of the test: like a real microphone it must
keep time while the pipeline under test holds the GIL (pocketsphinx does, for the whole decode of
an utterance; under CPU load that is seconds, and an in-process feeder would stall with it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np

RATE_HZ = 16_000
BLOCK_MS = 20
BLOCK_SAMPLES = RATE_HZ * BLOCK_MS // 1000

# The feeder process. Reads int16 PCM from stdin as fast as it comes, writes it to the FIFO in
# blocks at real-time pace (silence when nothing is queued), prints the number of fed samples
# written each time its queue runs empty, and ends when stdin is closed.
_FEEDER = r"""
import fcntl, os, sys, threading, time
fifo, block_bytes, block_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
room = sys.argv[4] if len(sys.argv) > 4 else ""
# The daemon holds the FIFO open read-write, so this does not block; O_NONBLOCK turns a missing
# reader into an error (ENXIO) instead of a hang.
fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
os.set_blocking(fd, True)
try:  # one page (128 ms): audio written while nobody records cannot pile up and arrive late
    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
except OSError:
    pass
buf, lock, eof = bytearray(), threading.Lock(), threading.Event()

def read_stdin():
    while data := sys.stdin.buffer.read1(1 << 16):
        with lock:
            buf.extend(data)
    eof.set()

threading.Thread(target=read_stdin, daemon=True).start()

echo = None
if room:  # the speaker heard back through a room: the sink's monitor, convolved, added
    import subprocess
    import numpy as np
    ir = np.load(room)
    echo, echo_lock = bytearray(), threading.Lock()
    mon = subprocess.Popen(["parec", "-d", "spk.monitor", "--raw", "--format=s16le",
                            "--rate=16000", "--channels=1", "--latency-msec=10"],
                           stdout=subprocess.PIPE)

    def read_monitor():
        hist = np.zeros(len(ir) - 1)
        nfft = 1 << int(np.ceil(np.log2(len(ir) + 4096 + len(hist))))
        spec = np.fft.rfft(ir, nfft)
        while data := mon.stdout.read1(4096):
            x = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float64)
            full = np.concatenate([hist, x])
            y = np.fft.irfft(np.fft.rfft(full, nfft) * spec, nfft)[len(hist):len(full)]
            hist = full[len(full) - len(hist):]
            out = np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()
            with echo_lock:
                echo.extend(out)
                if len(echo) > 16000:  # more than 0.5 s behind: catch up
                    del echo[: len(echo) - 16000]

    threading.Thread(target=read_monitor, daemon=True).start()

played, t_next = 0, time.monotonic()
print("ready", flush=True)
while not eof.is_set():
    with lock:
        block = bytes(buf[:block_bytes])
        del buf[:block_bytes]
        drained = not buf
    n = len(block)
    block = block + bytes(block_bytes - n)
    if echo is not None:
        with echo_lock:
            e = bytes(echo[:block_bytes])
            del echo[:block_bytes]
        if e:
            mixed = np.frombuffer(block, "<i2").astype(np.int32)
            mixed[: len(e) // 2] += np.frombuffer(e, "<i2")
            block = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
    view = memoryview(block)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:  # the daemon is gone, or its microphone was unplugged
        print(f"feeder: {exc}", file=sys.stderr, flush=True)
        os._exit(1)  # not sys.exit: the stdin thread would abort the interpreter's shutdown
    if n:
        played += n
        if drained:
            print(played // 2, flush=True)
    t_next += block_s
    delay = t_next - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    elif delay < -0.5:  # blocked a long while (nobody recording): go on from now, no burst
        t_next = time.monotonic()
"""


def available() -> bool:
    """Whether the `pulseaudio` daemon and `pactl` are installed (Debian: pulseaudio,
    pulseaudio-utils)."""
    return shutil.which("pulseaudio") is not None and shutil.which("pactl") is not None


SKIP_REASON = "PulseAudio is not installed (Debian: apt install pulseaudio pulseaudio-utils)"


class PulseError(RuntimeError):
    pass


def _die_with_parent() -> list[str]:
    """A prefix that makes the daemon exit with the test process (PR_SET_PDEATHSIG), so a
    killed test run leaves no daemon behind. (The signal follows the thread that started the
    daemon: start it from the main thread.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


def reinit_portaudio() -> None:
    """Make PortAudio rescan devices (it does so only in Pa_Initialize, at import)."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


class PulseServer:
    """A private PulseAudio daemon: default source `mic` (fed from a FIFO), default sink `spk`
    (16 kHz mono like Daybook's speaker stream, so its recorded monitor is what was played, not
    resampled twice: through the 44.1 kHz default, Moonshine heard "kitchen drawer" spoken by
    espeak as "kitchen floor" in some answers; `sink=False`: none, so that with the microphone
    unplugged there is no source at all, not even the sink's monitor for "default" to fall back
    to)."""

    def __init__(self, tmp_dir: Path, *, shm: bool = True, sink: bool = True,
                 start_timeout_s: float = 15.0, room_ir: np.ndarray | None = None) -> None:
        """`shm=False` sends audio over the socket instead of shared memory. Use it when the test
        kills the daemon: libpulse 16 can deadlock in a recording client whose server dies while
        shared-memory blocks are in flight (pa_memimport_free waits, holding the mainloop lock
        that PortAudio's ALSA thread needs), and then Pa_AbortStream and Pa_Terminate hang."""
        self.dir = Path(tmp_dir) / "pulse"
        self.socket = self.dir / "native.sock"
        self.fifo = self.dir / "mic.fifo"
        self.log_path = self.dir / "daemon.log"
        self.server = f"unix:{self.socket}"
        self.start_timeout_s = start_timeout_s
        self.shm = shm
        self.sink = sink
        # The speaker heard in the microphone: what the sink plays, convolved with this impulse
        # response (delay, reverberation, gain) and added to what is fed (see tests/room.py).
        self.room_ir = room_ir
        self.samples_fed = 0  # audio queued with feed()
        self.samples_played = 0  # of that, written to the FIFO
        self._proc: subprocess.Popen[bytes] | None = None
        self._feeder: subprocess.Popen[bytes] | None = None
        self._feeder_log = self.dir / "feeder.log"
        self._played = threading.Condition()
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
        try:
            self._start_daemon()
            self._start_feeder()
            self._set_env()
        except BaseException:
            self.close()
            raise
        return self

    def _pipe_source_args(self) -> list[str]:
        return ["source_name=mic", f"file={self.fifo}", "format=s16le", f"rate={RATE_HZ}",
                "channels=1"]

    def _start_daemon(self) -> None:
        # module-pipe-source makes the FIFO itself and refuses one that already exists.
        script = self.dir / "daemon.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-pipe-source {' '.join(self._pipe_source_args())}\n"
            + ("load-module module-null-sink sink_name=spk rate=16000 channels=1 format=s16le\n"
               if self.sink else "")
            + "set-default-source mic\n"
            + ("set-default-sink spk\n" if self.sink else "")
        )
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*_die_with_parent(), "pulseaudio", "--daemonize=no", "--system=false",
                 "--exit-idle-time=-1", "--use-pid-file=no", "--disallow-exit=no", "--realtime=no",
                 "--high-priority=no", f"--disable-shm={'no' if self.shm else 'yes'}",
                 "--log-target=stderr", "-n", "-F", str(script)],
                env=self._daemon_env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ready()

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
                        self._check_mic()
                        return
                    last = (r.stderr or r.stdout).strip()
            time.sleep(0.05)
        raise PulseError(
            f"pulseaudio did not answer `pactl info` within {self.start_timeout_s:.0f} s "
            f"({last or 'no socket'}):\n" + self.log_tail()
        )

    def _check_mic(self) -> None:
        # The daemon goes on when a module of its script fails to load (even after `.fail`).
        sources = self.pactl("list", "short", "sources").split()
        if "mic" not in sources or not self.fifo.exists():
            raise PulseError("pulseaudio started without its FIFO microphone:\n" + self.log_tail())

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
        feeder = self._feeder
        self._end_feeder(wait_s=2)
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
        if feeder is not None and feeder.poll() is None:
            try:
                feeder.wait(5)  # its blocked write fails with EPIPE now that the daemon is gone
            except subprocess.TimeoutExpired:
                feeder.kill()
                feeder.wait(5)
        self._restore_env()

    def unplug(self) -> None:
        """Remove the microphone, as pulling a USB microphone out would: its recording streams
        are killed by the server. (The FIFO goes with it, and so does the feeder.)"""
        self.pactl("unload-module", "module-pipe-source")

    def plug(self) -> None:
        """Bring the microphone back after `unplug()`: the same source name, the default source
        again, a new FIFO and feeder. Audio queued and not played before is forgotten."""
        self._end_feeder(wait_s=2)
        self.pactl("load-module", "module-pipe-source", *self._pipe_source_args())
        self.pactl("set-default-source", "mic")
        self._start_feeder()

    def kill(self) -> None:
        """Kill the daemon (SIGKILL) as a crash or an unplugged device would end it; `close()`
        still cleans up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)

    def restart(self) -> None:
        """Start the daemon again after `kill()` (as a desktop restarts its sound server): the
        same socket, microphone and FIFO path, a new feeder. Call it from the main thread."""
        self.kill()
        self._end_feeder(wait_s=2)
        for stale in (self.fifo, self.socket):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self._start_daemon()
        self._start_feeder()

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
        feeder = self._feeder
        if feeder is None or feeder.poll() is not None:
            raise PulseError(f"the FIFO feeder is not running: {self._feeder_problem()}")
        assert feeder.stdin is not None
        try:
            feeder.stdin.write(pcm.astype("<i2").tobytes())  # it reads eagerly: no long block
            feeder.stdin.flush()
        except BrokenPipeError as exc:
            raise PulseError(f"the FIFO feeder ended: {self._feeder_problem()}") from exc
        self.samples_fed += len(pcm)

    def play(self, pcm: np.ndarray, timeout_s: float = 60.0) -> None:
        """Play 16 kHz mono int16 audio into the speaker (the null sink `spk`), as another
        program would; returns once it has been played."""
        if not self.sink:
            raise PulseError("this server has no speaker")
        subprocess.run(["pacat", "--playback", "-d", "spk", "--raw", "--format=s16le",
                        f"--rate={RATE_HZ}", "--channels=1"],
                       input=np.asarray(pcm, "<i2").tobytes(), env=self.env, check=True,
                       timeout=timeout_s, capture_output=True)

    def wait_played(self, timeout_s: float) -> None:
        """Block until everything fed so far has been written to the FIFO."""
        deadline = time.monotonic() + timeout_s
        with self._played:
            while self.samples_played < self.samples_fed:
                if self._feeder is None or self._feeder.poll() is not None:
                    raise PulseError(f"the FIFO feeder ended: {self._feeder_problem()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PulseError(
                        f"{(self.samples_fed - self.samples_played) / RATE_HZ:.2f} s of audio "
                        f"still unwritten after {timeout_s:.1f} s"
                    )
                self._played.wait(min(left, 0.1))

    def _feeder_problem(self) -> str:
        try:
            text = self._feeder_log.read_text(errors="replace").strip()
        except OSError:
            text = ""
        code = self._feeder.poll() if self._feeder is not None else None
        return f"exit status {code}; {text[-2000:] or 'no output'}"

    def _end_feeder(self, wait_s: float) -> None:
        """Ask the feeder to end (stdin closed); wait for it a while. A write blocked on a reader
        that stopped reading fails once the daemon is gone."""
        feeder = self._feeder
        if feeder is None:
            return
        with contextlib.suppress(OSError):
            assert feeder.stdin is not None
            feeder.stdin.close()  # the feeder's signal to end
        with contextlib.suppress(subprocess.TimeoutExpired):
            feeder.wait(wait_s)

    def _start_feeder(self) -> None:
        old, self._feeder = self._feeder, None
        if old is not None:  # the microphone was plugged back, or the daemon restarted
            if old.poll() is None:
                old.kill()
                old.wait(5)
            with self._played:
                self.samples_fed = self.samples_played = 0
        room = ""
        if self.room_ir is not None:
            room = str(self.dir / "room_ir.npy")
            np.save(room, np.asarray(self.room_ir, dtype=np.float64))
        with self._feeder_log.open("wb") as log:
            self._feeder = subprocess.Popen(
                [sys.executable, "-c", _FEEDER, str(self.fifo), str(BLOCK_SAMPLES * 2),
                 str(BLOCK_SAMPLES / RATE_HZ), room],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=self.env,
            )
        assert self._feeder.stdout is not None
        if self._feeder.stdout.readline().strip() != b"ready":
            self._feeder.wait(5)
            raise PulseError(f"the FIFO feeder did not start: {self._feeder_problem()}")
        threading.Thread(target=self._read_progress, args=(self._feeder,),
                         name="pulse-feeder-progress", daemon=True).start()

    def _read_progress(self, feeder: subprocess.Popen[bytes]) -> None:
        for line in feeder.stdout or ():
            with self._played:
                if feeder is self._feeder:  # not a feeder replaced meanwhile
                    self.samples_played = int(line)
                self._played.notify_all()
        with self._played:
            self._played.notify_all()
