"""Call ``hrm-serve`` over HTTP, synchronously or from asyncio (needs only ``httpx``).

    from hrm.serve.client import Client, AsyncClient

    with Client("http://127.0.0.1:8000") as c:
        reply = c.solve("....14..3.2.....", open("puzzles.txt").read())
        for a in reply.results:
            print(a["source"], a["answer"], a["segments"])
        for e in reply.errors:
            print(e["source"], e["line"], e["error"])

    async with AsyncClient("http://127.0.0.1:8000") as c:
        replies = await asyncio.gather(*(c.solve(p) for p in puzzles))

A reply holds one item per input record, in order: an answer (the object ``hrm-run --json`` prints)
or an error (``source``, ``line``, ``error``, ``status``: 422 bad record, 500/503 the server could
not answer it). A request the server refuses as a whole (400 unusable body, 413 too many puzzles)
raises :class:`ServeError`; so does an unreachable server (with httpx's exception as the cause).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ServeError(RuntimeError):
    """The server refused the request as a whole, or could not be reached."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


@dataclass
class Reply:
    """One request's outcome: overall HTTP status and one item per input record."""

    status: int
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def results(self) -> list[dict[str, Any]]:
        return [a for a in self.answers if "error" not in a]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [a for a in self.answers if "error" in a]


def _payload(inputs: tuple[str, ...]) -> dict[str, Any]:
    if not inputs or not all(isinstance(t, str) for t in inputs):
        raise TypeError("solve() takes one or more texts (puzzle strings or file contents)")
    return {"inputs": list(inputs)}


def _reply(response: Any) -> Reply:
    try:
        body = response.json()
    except ValueError:
        raise ServeError(response.status_code, f"not a JSON reply: {response.text[:200]!r}") from None
    if "answers" not in body:
        raise ServeError(response.status_code, body.get("error", str(body)[:200]))
    return Reply(response.status_code, body["answers"])


class Client:
    """Blocking client over one connection pool (thread-safe: share it between threads)."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        import httpx

        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def solve(self, *inputs: str) -> Reply:
        """Solve every record of ``inputs`` (each in any format hrm-run accepts)."""
        import httpx

        try:
            return _reply(self._http.post("/solve", json=_payload(inputs)))
        except httpx.HTTPError as exc:
            raise ServeError(None, f"{self._http.base_url}: {type(exc).__name__}: {exc}") from exc

    def ready(self) -> bool:
        """True when a solver replica answers (``GET /readyz``)."""
        import httpx

        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """asyncio client over one connection pool; run many ``solve`` calls concurrently."""

    def __init__(self, url: str, timeout: float = 120.0, max_connections: int = 64) -> None:
        import httpx

        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout,
                                       limits=httpx.Limits(max_connections=max_connections))

    async def solve(self, *inputs: str) -> Reply:
        import httpx

        try:
            return _reply(await self._http.post("/solve", json=_payload(inputs)))
        except httpx.HTTPError as exc:
            raise ServeError(None, f"{self._http.base_url}: {type(exc).__name__}: {exc}") from exc

    async def ready(self) -> bool:
        import httpx

        try:
            return (await self._http.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
