"""Talking to a teacher LLM: the official OpenAI or Gemini SDK behind one `Teacher.ask(system, user)`.

The SDKs' own retries are off; we retry here (exponential backoff with jitter, Retry-After honoured, on
429 / 5xx / timeouts / connection errors) so that every attempt is counted and testable. A shared
RateLimiter spaces requests across worker threads; `run_concurrently` fans batches out to a thread
pool and hands each reply back to the calling thread. 401/403/404 raise TeacherError at once.
"""
from __future__ import annotations

import email.utils
import importlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

DEFAULT_KEY_ENVS = {"openai": ("OPENAI_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
RETRYABLE_STATUS = {408, 409, 425, 429}  # and every 5xx
FATAL_STATUS = {401, 403, 404}  # a bad key or model name: no later batch will fare better
MAX_RETRY_AFTER = 300.0
MAX_BACKOFF = 60.0
MAX_FAILED_IN_A_ROW = 3  # batches that ran out of retries, back to back: the server is down, stop
MAX_FRUITLESS_IN_A_ROW = 10  # replies that gave no usable example, back to back: the teacher can't do it


class TeacherError(RuntimeError):
    """A run cannot go on: missing key, unknown teacher, bad tools file, server unreachable or refusing."""


@dataclass
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Attempts:
    """The outcome of one batch request: the reply (None once retries ran out) and what it cost."""
    reply: Reply | None
    requests: int
    retries: int
    error: str = ""


class RateLimiter:
    """At most `per_minute` request starts per minute across threads (None: no limit)."""

    def __init__(self, per_minute: float | None):
        if per_minute is not None and per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, got {per_minute}")
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(start - now)  # outside the lock: other threads book their own slots meanwhile


def api_key(teacher: str, api_key_env: str | None, base_url: str | None) -> str:
    names = (api_key_env,) if api_key_env else DEFAULT_KEY_ENVS[teacher]
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if base_url and not api_key_env:
        return "none"  # local servers (Ollama, llama.cpp, vLLM) ignore the key but the SDKs want one
    raise TeacherError(f"{' or '.join(names)} is not set: export it, or name another variable with api_key_env")


def _openai_sender(model: str, base_url: str | None, key: str, timeout: float, temperature: float,
                   max_tokens: int):
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)

    def send(system: str, user: str) -> Reply:
        resp = client.chat.completions.create(model=model, temperature=temperature, max_tokens=max_tokens, messages=[
            {"role": "system", "content": system}, {"role": "user", "content": user}])
        text = resp.choices[0].message.content if resp.choices else ""
        usage = resp.usage
        return Reply(text or "", getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)

    return send, (openai.APIError,)


def _transport_errors() -> tuple[type[BaseException], ...]:
    found = []
    for name in ("httpx", "httpx2"):  # google-genai sends through whichever of the two is installed
        try:
            found.append(importlib.import_module(name).TransportError)
        except ImportError:
            continue
    return tuple(found)


def _gemini_sender(model: str, base_url: str | None, key: str, timeout: float, temperature: float,
                   max_tokens: int):
    from google import genai
    from google.genai import errors, types

    options = types.HttpOptions(base_url=base_url, timeout=int(timeout * 1000))  # milliseconds
    client = genai.Client(api_key=key, http_options=options)

    def send(system: str, user: str) -> Reply:
        config = types.GenerateContentConfig(system_instruction=system, temperature=temperature,
                                             max_output_tokens=max_tokens)
        resp = client.models.generate_content(model=model, contents=user, config=config)
        usage = resp.usage_metadata
        prompt = (usage.prompt_token_count or 0) if usage else 0
        completion = ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
        return Reply(resp.text or "", prompt, completion)

    return send, (errors.APIError, *_transport_errors())


def _status_and_retry_after(exc: BaseException) -> tuple[int | None, float | None]:
    status = getattr(exc, "status_code", None)  # openai.APIStatusError
    if status is None and isinstance(getattr(exc, "code", None), int):
        status = exc.code  # google.genai.errors.APIError
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return status, parse_retry_after(headers.get("retry-after"))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def reply_budget(batch_size: int) -> int:
    """Most tokens a reply may take (~150 per example, plus room for invented tools): a runaway reply stops."""
    return 150 * batch_size + 1500


class Teacher:
    """One teacher endpoint: `ask` sends a system + user prompt and retries transient failures."""

    def __init__(self, teacher: str, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 timeout: float = 60.0, temperature: float = 1.0, max_retries: int = 5, backoff_base: float = 1.0,
                 requests_per_minute: float | None = None, max_tokens: int = 8192):
        senders = {"openai": _openai_sender, "gemini": _gemini_sender}
        if teacher not in senders:
            raise TeacherError(f"unknown teacher {teacher!r}: use one of {sorted(senders)}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.name = f"{teacher} ({base_url or 'default endpoint'})"
        key = api_key(teacher, api_key_env, base_url)
        self.send: Callable[[str, str], Reply]
        self.send, self.errors = senders[teacher](model, base_url, key, timeout, temperature, max_tokens)
        self.stop = threading.Event()  # set on Ctrl-C: no more retries or backoff sleeps
        self.max_retries, self.backoff_base = max_retries, backoff_base
        self.limiter = RateLimiter(requests_per_minute)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return min(MAX_BACKOFF, self.backoff_base * 2 ** attempt) * random.uniform(0.5, 1.5)

    def ask(self, system: str, user: str) -> Attempts:
        """The reply, or Attempts(reply=None) after max_retries retries; TeacherError on 401/403/404."""
        requests = retries = 0
        error = ""
        for attempt in range(self.max_retries + 1):
            if self.stop.is_set():
                break
            self.limiter.wait()
            requests += 1
            try:
                return Attempts(self.send(system, user), requests, retries)
            except self.errors as e:
                status, retry_after = _status_and_retry_after(e)
                message = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                if status in FATAL_STATUS:
                    raise TeacherError(f"{self.name} refused the request with HTTP {status}: {message}") from e
                error = f"HTTP {status}: {message}" if status else message
                if status is not None and status < 500 and status not in RETRYABLE_STATUS:
                    break  # a bad request: sending it again will not help
                if attempt == self.max_retries:
                    break
                retries += 1
                if self.stop.wait(self._delay(attempt, retry_after)):  # a backoff sleep that Ctrl-C cuts short
                    break
        return Attempts(None, requests, retries, error)


def run_concurrently(jobs: Iterator, teacher: Teacher, handle: Callable[[Any, Attempts], None], concurrency: int,
                     enough: Callable[[int], bool]) -> None:
    """Send jobs (with .system and .user) on `concurrency` threads; `handle(job, attempts)` runs here, in
    the caller's thread, one reply at a time. `enough(in_flight)` says when to stop submitting."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="teacher")
    pending: dict = {}
    try:
        while True:
            while len(pending) < concurrency and not enough(len(pending)):
                job = next(jobs, None)
                if job is None:
                    break
                pending[pool.submit(teacher.ask, job.system, job.user)] = job
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                handle(pending.pop(future), future.result())
    except KeyboardInterrupt:
        teacher.stop.set()  # in-flight requests give up instead of retrying; the caller keeps its results
        raise
    finally:
        # Requests still in flight are surplus (or the run failed): don't wait for them.
        pool.shutdown(wait=False, cancel_futures=True)


class Streaks:
    """Stops a run that cannot progress: the server keeps failing, or the teacher keeps missing."""

    def __init__(self, teacher: Teacher):
        self.teacher, self.failed, self.fruitless = teacher, 0, 0

    def failed_batch(self, error: str) -> None:
        self.failed += 1
        if self.failed >= MAX_FAILED_IN_A_ROW:
            raise TeacherError(f"{self.teacher.name} unreachable: {self.failed} batches in a row failed after "
                               f"{self.teacher.max_retries} retries each (last error: {error})")

    def answered(self, accepted: int, rejected: Counter) -> None:
        self.failed = 0
        self.fruitless = 0 if accepted else self.fruitless + 1
        if self.fruitless >= MAX_FRUITLESS_IN_A_ROW:
            raise TeacherError(f"the teacher's last {self.fruitless} replies gave no usable example; "
                               f"rejected so far: {dict(rejected.most_common(4))}")
