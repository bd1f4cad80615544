"""aimw.wsgi: any recipe or composed ASGI app as a WSGI application, for servers that speak
WSGI (gunicorn, mod_wsgi, uWSGI), through a2wsgi (the optional extra ``aimw[wsgi]``)::

    gunicorn -k gthread --threads 32 'aimw.wsgi:application("recipes.huggingface:app")'

or, in a WSGI file: ``application = aimw.wsgi.asgi_to_wsgi(app)``.

Per process, one event loop runs in its own thread (uvloop when installed). It starts at the
first use in each process (a forked child, gunicorn's ``--preload`` included, starts its
own) by running the app's ASGI lifespan startup on it, which a2wsgi does not do (aimw's
upstream pool opens there); the shutdown runs at the interpreter's exit. a2wsgi's
``ASGIMiddleware`` then runs each request on that loop while the server's thread waits: every
``http.response.body`` message becomes one chunk of the WSGI response as it comes, which the
server writes at once (gunicorn writes each chunk, ``Transfer-Encoding: chunked``), so an
event stream reaches the client event by event.

The cost: the server's thread is held for the whole exchange, a stream of minutes for minutes
(a thread per in-flight request: gunicorn's gthread worker serves ``--threads`` requests at
once per worker; a sync worker one, and it needs a ``--timeout`` longer than the longest
stream), and every body message crosses between two threads.

A client's departure: WSGI has no disconnect notice. The server learns of it when a write
fails and closes the response; then the app's pending and later ``receive()`` return
``http.disconnect`` (aimw cancels the upstream call and logs the 499) and its pending and
later ``send()`` return without sending. A client that leaves while the provider is still
thinking is seen at the first write.

Request bodies: a2wsgi reads ``CONTENT_LENGTH`` bytes, so a chunked request body (no
Content-Length) arrives empty; Anthropic's SDKs and Claude Code send Content-Length.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import os
import threading
from collections.abc import Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from aimw.types import ASGIApp, Message, Receive, Scope, Send

try:
    from a2wsgi import ASGIMiddleware
except ModuleNotFoundError as exc:  # the optional extra
    raise ModuleNotFoundError("aimw.wsgi needs a2wsgi: pip install 'aimw[wsgi]'", name=exc.name) from exc

if TYPE_CHECKING:
    from a2wsgi.wsgi_typing import Environ, StartResponse

logger = logging.getLogger("aimw.wsgi")

LIFESPAN_TIMEOUT = 30.0  # seconds the app's lifespan startup, and its shutdown, may take
_LINK = "aimw.wsgi.link"  # the environ key of a request's _Link (a2wsgi puts environ in scope["wsgi_environ"])
_DISCONNECT: Message = {"type": "http.disconnect"}
_T = TypeVar("_T")


def application(target: str) -> WSGIGateway:
    """The ASGI app named by ``target``, ``"module:attribute"`` as Hypercorn takes it
    (``"recipes.huggingface:app"``), as a WSGI application (for gunicorn's
    ``'aimw.wsgi:application("recipes.huggingface:app")'``).

    Raises:
        ValueError: ``target`` is not ``module:attribute``.
        ImportError / AttributeError: the module or the attribute does not exist.
    """
    module_name, _, attribute = target.partition(":") if isinstance(target, str) else ("", "", "")
    if not module_name or not attribute:
        raise ValueError(
            f"aimw.wsgi.application takes 'module:attribute' (\"recipes.huggingface:app\"), not {target!r}"
        )
    app: Any = importlib.import_module(module_name)
    for name in attribute.split("."):
        app = getattr(app, name)
    return asgi_to_wsgi(app)


def asgi_to_wsgi(app: ASGIApp) -> WSGIGateway:
    """``app`` as a WSGI application (see the module); its lifespan starts now."""
    gateway = WSGIGateway(app)
    gateway.start()
    return gateway


class WSGIGateway:
    """A WSGI application serving the ASGI ``app`` (see the module).

    ``start()`` runs the event loop and the app's lifespan startup in this process (the first
    request does it when nothing did); ``close()`` runs the shutdown (registered at exit).

    Raises (from ``start`` or the first request):
        RuntimeError: the app answered ``lifespan.startup.failed``, or took longer than
            LIFESPAN_TIMEOUT.
    """

    __slots__ = ("_inherited", "_lock", "_runtime", "app")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._runtime: _Runtime | None = None
        self._inherited: _Runtime | None = None
        os.register_at_fork(after_in_child=self._forget)
        atexit.register(self.close)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        runtime = self._runtime or self.start()
        link = _Link(runtime.loop)
        environ[_LINK] = link  # type: ignore[literal-required]  # a2wsgi's Environ is a TypedDict
        return _body(runtime.middleware(environ, start_response), link)

    def start(self) -> _Runtime:
        """Start this process's loop and run the app's lifespan startup (once)."""
        with self._lock:
            if self._runtime is None:
                self._runtime = _Runtime(self.app)
            return self._runtime

    def close(self) -> None:
        """Run the app's lifespan shutdown and stop the loop (nothing if not started here)."""
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.stop()

    def _forget(self) -> None:
        """In a forked child: the parent's loop thread did not come along; start afresh. The
        parent's runtime is kept, never run: collected, its pending tasks would each log
        "Task was destroyed but it is pending"."""
        self._lock = threading.Lock()
        self._inherited, self._runtime = self._runtime, None


class _Runtime:
    """One process's event loop thread, a2wsgi's middleware on it, and the app's lifespan."""

    __slots__ = ("lifespan", "loop", "middleware", "thread")

    def __init__(self, app: ASGIApp) -> None:
        self.loop = _new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aimw-wsgi-loop", daemon=True)
        self.thread.start()
        self.lifespan = _Lifespan(app)
        try:
            self.run(self.lifespan.startup())
        except BaseException:
            self._stop_loop()
            raise
        self.middleware = ASGIMiddleware(_Linked(app), loop=self.loop)  # type: ignore[arg-type]

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop and wait for it (at most LIFESPAN_TIMEOUT)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(LIFESPAN_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise RuntimeError(f"the app's lifespan took longer than {LIFESPAN_TIMEOUT:.0f} s") from None

    def stop(self) -> None:
        try:
            self.run(self.lifespan.shutdown())
        except Exception as exc:  # at exit: say it, and stop all the same
            logger.warning("aimw.wsgi: the app's lifespan shutdown failed: %s", exc)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(LIFESPAN_TIMEOUT)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:  # Windows: uvloop is not a dependency there
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class _Lifespan:
    """One ASGI lifespan conversation with ``app`` (ASGI spec, "Lifespan Protocol"). An app
    that returns or raises before answering the startup does not speak lifespan: it is served
    without (as Hypercorn and uvicorn do)."""

    __slots__ = ("answers", "app", "messages", "task")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.answers: asyncio.Queue[Message] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._converse())
        await self.messages.put({"type": "lifespan.startup"})
        answer = await self.answers.get()
        if answer["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the app's lifespan startup failed: {answer.get('message', '')}")

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        await self.messages.put({"type": "lifespan.shutdown"})
        answer = await self.answers.get()
        if answer["type"] == "lifespan.shutdown.failed":
            raise RuntimeError(f"the app's lifespan shutdown failed: {answer.get('message', '')}")

    async def _converse(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self.messages.get, self.answers.put)
        except Exception as exc:
            logger.info("aimw.wsgi: the app does not speak ASGI lifespan (%s): served without", exc)
        finally:
            await self.answers.put({"type": "lifespan.returned"})


class _Link:
    """One request's link between the server's thread and the app's task: once the client
    left (``client_left``, from the server's thread), the app's receive returns
    ``http.disconnect`` and its send returns without sending, as Hypercorn's does after a
    disconnect, those pending included (their task's cancellation is absorbed: a2wsgi's
    would wait for the server forever). The pending receives are released first, so that
    the departure is seen (aimw's watch cancels the upstream call, ObserveMiddleware logs
    the 499) before a sender that no longer waits runs through what is left of the answer."""

    __slots__ = ("absorbing", "left", "loop", "receiving", "sending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.left = False
        self.receiving: set[asyncio.Task[Any]] = set()  # tasks inside a2wsgi's receive
        self.sending: set[asyncio.Task[Any]] = set()  # tasks inside a2wsgi's send
        self.absorbing: set[asyncio.Task[Any]] = set()  # those cancelled by _leave

    def client_left(self) -> None:
        self.loop.call_soon_threadsafe(self._leave)

    def _leave(self) -> None:
        self.left = True
        for task in (*self.receiving, *self.sending):  # the tasks resume in this order
            self.absorbing.add(task)
            task.cancel()

    def _absorbed(self, task: asyncio.Task[Any]) -> bool:
        """The CancelledError in ``task`` came from _leave alone: absorb it."""
        if task not in self.absorbing:
            return False
        self.absorbing.discard(task)
        return task.uncancel() == 0

    def receive(self, receive: Receive) -> Receive:
        async def linked_receive() -> Message:
            task = asyncio.current_task()
            if self.left or task is None:
                return _DISCONNECT
            self.receiving.add(task)
            try:
                return await receive()
            except asyncio.CancelledError:
                if self._absorbed(task):
                    return _DISCONNECT
                raise
            finally:
                self.receiving.discard(task)

        return linked_receive

    def send(self, send: Send) -> Send:
        async def linked_send(message: Message) -> None:
            task = asyncio.current_task()
            if self.left or task is None:
                return
            self.sending.add(task)
            try:
                await send(message)
            except asyncio.CancelledError:
                if not self._absorbed(task):
                    raise
            finally:
                self.sending.discard(task)

        return linked_send


class _Linked:
    """The ASGI app as a2wsgi runs it: each HTTP request talks through its :class:`_Link`."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        link: _Link | None = scope.get("wsgi_environ", {}).get(_LINK)
        if link is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, link.receive(receive), link.send(send))


def _body(chunks: Iterable[bytes], link: _Link) -> Iterator[bytes]:
    """a2wsgi's response chunks; closed by the server before their end, the client left."""
    complete = False
    try:
        yield from chunks
        complete = True
    finally:
        if not complete:
            link.client_left()
