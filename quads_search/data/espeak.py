"""eSpeak NG through ctypes, from the `espeakng_loader` wheel (no system espeak needed).

The library is process-global state: one engine per process, run synchronously, handing
samples to a callback, so synthesis returns int16 audio instead of playing it.

eSpeak NG also keeps hidden state between utterances (pitch flutter, gain control) that
neither re-initialising nor its random seed resets, so the same request sounds slightly
different depending on what was said before. Reproducible audio therefore comes from
`speak_fresh`, which runs a request list in order in a new process. That process runs this
file as a script with only the standard library, so nothing else needs importing there.
"""
from __future__ import annotations

import ctypes
import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from functools import lru_cache

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exit() when the data is missing
CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_PITCH = 1, 3
SAMPLE_RATE = 22050

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

Request = tuple[str, str, int, int]  # text, voice, rate (words per minute), pitch (0-100)


class Espeak:
    """Text -> int16 mono little-endian PCM bytes at SAMPLE_RATE, one voice setting at a time."""

    def __init__(self, library: str, data: str) -> None:
        lib = ctypes.CDLL(library)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 1000, data.encode(), INITIALIZE_DONT_EXIT)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak_Initialize returned {rate}, expected {SAMPLE_RATE} (data: {data})")
        self._lib = lib
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # kept alive: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), count: int, _events: int) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50) -> bytes:
        """Speak `text` with `voice` ("en-us", "en+f2", "en-gb-x-rp+klatt"; variants are the
        files in the data's `voices/!v`), rate in words per minute (80-450), pitch 0-100."""
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch)):
            if lib.espeak_SetParameter(param, value, 0) != 0:
                raise ValueError(f"eSpeak NG rejected parameter {param}={value}")
        lib.espeak_ng_SetRandSeed(0)  # breath/klatt noise restarts each utterance
        encoded = text.encode() + b"\0"
        self._chunks = []
        status = lib.espeak_Synth(encoded, len(encoded), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        return b"".join(self._chunks)


def _paths() -> tuple[str, str]:
    import espeakng_loader  # here, not at the top: the worker script gets the paths as arguments

    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


@lru_cache(maxsize=1)
def engine() -> Espeak:
    """This process's engine."""
    return Espeak(*_paths())


def speak_fresh(requests: list[Request]) -> Iterator[bytes]:
    """Yield each request's audio, synthesised in order by a new process (reproducible)."""
    command = [sys.executable, "-I", __file__, *_paths()]  # -I: no script dir or user paths on sys.path
    worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        worker.stdin.write(json.dumps(requests).encode())
        worker.stdin.close()
        for _ in requests:
            header = worker.stdout.read(4)
            if len(header) < 4:
                raise RuntimeError(f"the eSpeak worker stopped early (exit code {worker.wait()})")
            yield worker.stdout.read(struct.unpack("<I", header)[0])
    finally:
        worker.kill()
        worker.wait()
        worker.stdout.close()


def _serve(library: str, data: str) -> None:
    """Worker: a JSON list of requests on stdin -> length-prefixed audio on stdout, in order."""
    espeak = Espeak(library, data)
    for request in json.load(sys.stdin):
        audio = espeak.synth(*request)
        sys.stdout.buffer.write(struct.pack("<I", len(audio)) + audio)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve(*sys.argv[1:3])
