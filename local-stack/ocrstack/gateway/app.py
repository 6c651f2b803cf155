"""The gateway's HTTP side: the OpenFaaS routes a client, MinIO and faas-cli use, proxied to the functions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import importlib.metadata
import ipaddress
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import swagger_ui_bundle
import yaml
import yarl
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from redis.exceptions import RedisError

from common.adapters import metrics as pipeline_metrics
from common.config import Settings, load_settings
from common.errors import PipelineError
from common.logging import bind_context, clear_context, get_logger
from common.web import auth
from ocrstack.gateway import access, edge_rules, policy
from ocrstack.gateway.intake import BodyRefused, BodyRules, ReceivedBody, receive, rules_for_function
from ocrstack.gateway.metrics import CLIENT_CLOSED, Metrics
from ocrstack.gateway.logs import BadLogRequest, LogFile, LogRequest, wanted
from ocrstack.gateway.policy import DeploymentRefused
from ocrstack.gateway.callbacks import CallbackRefused, CallbackRules, PinnedResolver
from ocrstack.gateway.provider import Deployment, FunctionSpec, FunctionStartError, Provider, parse_duration
from ocrstack.gateway.queue import LANE_HEADER, AsyncQueue, BodyNotKept, Invocation, Result, new_call_id

log = get_logger()

VERSION = importlib.metadata.version("ocr-pipeline")
# Headers that describe one hop, not the message (RFC 9110 7.6.1), plus the ones we set ourselves.
# What a client may write to pose as someone else; passed on only from a trusted proxy.
FORWARDING = {"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip"}
# Only the gateway's queue names a verified key (access.py), and only beside the internal token.
VERIFIED_KEY = auth.VERIFIED_KEY_HEADER.lower()
# Only the gateway vouches for the X-Forwarded-For it writes; a client's own proof is dropped.
FORWARDED_PROOF = auth.FORWARDED_PROOF_HEADER.lower()
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host"}


# Async bodies of no verified caller received at once (see invoke_async).
ANONYMOUS_BODIES = 4

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>OCR pipeline API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    // persistAuthorization: a key entered under "Authorize" survives a reload (kept in this browser's localStorage).
    window.ui = SwaggerUIBundle({url: "/openapi.yaml", dom_id: "#swagger-ui", persistAuthorization: true});
  </script>
</body>
</html>
"""


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def pipeline_error(e: PipelineError, call_id: str) -> web.Response:
    """A refusal in the functions' own words (code, status, challenge); the unread body ends the connection."""
    status = 503 if e.http_status >= 500 else e.http_status
    response = web.json_response({"error": {"code": e.code, "message": e.message, "request_id": call_id}},
                                 status=status, headers={**e.headers, "X-Call-Id": call_id})
    response.force_close()
    return response


def body_refused(e: BodyRefused, call_id: str) -> web.Response:
    # With the call's id, as a function's own errors carry their request id.
    response = web.json_response({"error": {"code": e.code, "message": e.message, "request_id": call_id}},
                                 status=e.status, headers={"X-Request-Id": call_id, "X-Call-Id": call_id})
    # The rest of the body is not wanted: the connection ends after the answer, which the client gets
    # while it is still sending.
    response.force_close()
    return response


def client_gone(request: web.Request) -> bool:
    """Whether the client's connection is closed (a reset on our side of the proxy, not the function's)."""
    return request.transport is None or request.transport.is_closing()


def split_name(raw: str) -> str:
    """faas-cli calls `name.namespace`; the namespace is the part after the last dot."""
    return raw.rsplit(".", 1)[0] if "." in raw else raw


@dataclasses.dataclass
class _SyncCall:
    """How far a synchronous call got: what the metrics and the request's log line report once it ends."""

    call_id: str
    status: int = 502  # until the function answers
    body: ReceivedBody | None = None
    response: web.StreamResponse | None = None
    upstream_headers: dict[str, str] = dataclasses.field(default_factory=dict)


class GatewayApp:
    """The routes and what they share: the provider's functions, the queue, metrics and one HTTP client."""

    # How often a followed log is looked at for new lines.
    LOG_POLL_SECONDS = 0.2

    def __init__(self, provider: Provider, queue: AsyncQueue, max_body: int,
                 basic_auth: tuple[str, str] | None = None, openapi: Path | None = None,
                 logs_follow_timeout: float = 300.0, trusted_proxies: tuple[str, ...] = (),
                 callback_rules: CallbackRules = CallbackRules(), body_rules: BodyRules | None = None,
                 async_max_body: int = 1024 * 1024, open_queue_budget: int = 4 * 1024 * 1024) -> None:
        self.openapi = openapi
        self.trusted_proxies = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
        self.callback_rules = callback_rules
        self.provider = provider
        self.queue = queue
        self.max_body = max_body
        self.body_rules = body_rules or BodyRules(max_bytes=max_body)
        self.async_max_body = async_max_body
        self.open_queue_budget = open_queue_budget
        self._settings: dict[str, tuple[FunctionSpec, Settings]] = {}
        self._anonymous_bodies = asyncio.Semaphore(ANONYMOUS_BODIES)
        self.basic_auth = basic_auth
        self.logs_follow_timeout = logs_follow_timeout
        self.metrics = Metrics(lambda: {name: len(fn.replicas) for name, fn in self.provider.functions.items()})
        self.session: aiohttp.ClientSession | None = None
        self.ready = False
        self.stopping = False  # set on shutdown: followed logs end

    # --- wiring --------------------------------------------------------------------------------
    def build(self) -> web.Application:
        async def front_page(_request: web.Request) -> web.StreamResponse:
            # A browser opening the gateway lands on the web page (the ui function).
            raise web.HTTPFound("/function/ui/")

        app = web.Application(client_max_size=self.max_body, middlewares=[self._json_errors, self._system_auth])
        app.add_routes([
            web.get("/", front_page),
            web.get("/healthz", self.healthz),
            web.get("/system/info", self.system_info),
            web.get("/system/functions", self.list_functions),
            web.post("/system/functions", self.deploy_function),
            web.put("/system/functions", self.update_function),
            web.delete("/system/functions", self.remove_function),
            web.get("/system/function/{name}", self.get_function),
            web.get("/system/logs", self.function_logs),
            web.get("/system/queue", self.queue_stats),
            web.get("/system/queue/dead", self.dead_letters),
            web.post("/system/queue/dead/{id}/replay", self.replay),
            web.get("/metrics", self.prometheus),
            web.get("/openapi.yaml", self.openapi_document),
            web.get("/docs", self.docs_page),
            web.static("/docs/static", swagger_ui_bundle.swagger_ui_path),
            web.route("*", "/function/{name}", self.invoke_sync),
            web.route("*", "/function/{name}/{tail:.*}", self.invoke_sync),
            # POST only, as OpenFaaS's queued proxy: other methods get 405.
            web.post("/async-function/{name}", self.invoke_async),
            web.post("/async-function/{name}/{tail:.*}", self.invoke_async),
        ])
        return app

    @web.middleware
    async def _json_errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every refusal as JSON with a stable code, whatever the input; a body left unread ends the connection."""
        response: web.StreamResponse
        refused = edge_rules.path_refusal(request.raw_path)
        try:
            if refused is not None:
                response = json_error(400, "invalid_path", refused)
            else:
                response = await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise  # a redirect
            response = json_error(e.status, edge_rules.http_code(e.status), e.reason,
                                  headers={k: v for k, v in e.headers.items() if k.lower() == "allow"})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("gateway.request_crashed", method=request.method, path=request.raw_path[:200])
            response = json_error(500, "internal_error", "internal error; see the gateway's log")
        if not response.prepared and not request.content.at_eof():
            # The rest of the body is not wanted: reading it on would let a client push without end.
            response.force_close()
        return response

    @web.middleware
    async def _system_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.basic_auth and request.path.startswith("/system/"):
            header = request.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if not hmac.compare_digest(header.encode(), expected.encode()):
                return json_error(401, "unauthenticated", "the gateway's /system API needs its basic auth",
                                  headers={"WWW-Authenticate": 'Basic realm="Restricted"'})
        return await handler(request)

    async def open(self) -> None:
        # Per-call timeouts are set on each request from the function's exec_timeout.
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    # --- system routes -------------------------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="OK") if self.ready else web.Response(status=503, text="starting")

    async def system_info(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "provider": {"provider": "ocr-pipeline-local",
                         "orchestration": "podman" if self.provider.runtime == "containers" else "process",
                         "version": {"sha": "local", "release": VERSION}},
            "version": {"sha": "local", "release": VERSION, "commit_message": ""},
            "arch": "x86_64",
        })

    def _describe(self, name: str) -> dict[str, Any]:
        fn = self.provider.functions[name]
        return {
            "name": name, "namespace": "openfaas-fn", "image": fn.spec.image, "replicas": len(fn.replicas),
            "availableReplicas": fn.available(), "invocationCount": self.provider.invocations[name],
            "envProcess": f"functions-framework --target handle --source {fn.spec.handler}/handler.py",
            "envVars": {k: v for k, v in fn.spec.environment.items()},
            "labels": fn.spec.labels, "annotations": fn.spec.annotations,
        }

    async def _deployment(self, request: web.Request) -> FunctionSpec | web.Response:
        """faas-cli's deployment request -> a spec of a function the stack file names (see policy.py)."""
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "bad_request", "the deployment must be a JSON object")
        if not isinstance(body, dict):
            return json_error(400, "bad_request", "the deployment must be a JSON object")
        try:
            name = policy.function_name(body.get("service"))
            policy.check_namespace(body.get("namespace"))
            try:
                declared = self.provider.declared(name)
            except (OSError, ValueError, yaml.YAMLError) as e:
                return json_error(500, "stack_file_invalid", f"the gateway's stack file cannot be read: {e}")
            if declared is None:
                return json_error(400, "function_unknown",
                                  f"{name!r} is not a function of the gateway's stack file: this gateway runs only "
                                  "the code its stack file names; add the function there, then deploy it")
            handler = declared.handler
            if declared.upstream is None and (handler is None or not (handler / "handler.py").is_file()):
                return json_error(400, "function_unknown",
                                  f"the stack file's handler folder of {name!r} has no handler.py")
            image = body.get("image") or ""
            fprocess = body.get("envProcess") or ""
            if not isinstance(image, str) or not isinstance(fprocess, str):
                raise DeploymentRefused("bad_request", "image and envProcess must be strings")
            policy.check_image(image, declared.image, name)
            policy.check_fprocess(fprocess, declared.fprocess, name)
            requested = policy.string_map(body, "envVars")
            environment = policy.environment(requested, declared.environment, self.provider.extra_env)
            policy.check_settings(requested, self._function_env(environment), parse_duration)
            labels = policy.string_map(body, "labels")
            annotations = policy.string_map(body, "annotations")
        except DeploymentRefused as e:
            log.warning("function.deploy_refused", code=e.code, reason=e.message)
            return json_error(400, e.code, e.message)
        return FunctionSpec(
            name=name, handler=declared.handler, image=declared.image, environment=environment,
            labels=labels or dict(declared.labels), annotations=annotations or dict(declared.annotations),
            upstream=declared.upstream, fprocess=declared.fprocess, access=declared.access,
            body_limit=declared.body_limit,
        )

    async def deploy_function(self, request: web.Request) -> web.Response:
        return await self._deploy(request, must_exist=False)

    async def update_function(self, request: web.Request) -> web.Response:
        """faas-cli deploy tries PUT first and falls back to POST on 404, so 404 means "not deployed"."""
        return await self._deploy(request, must_exist=True)

    async def _deploy(self, request: web.Request, must_exist: bool) -> web.Response:
        spec = await self._deployment(request)
        if isinstance(spec, web.Response):
            return spec
        if must_exist and self.provider.get(spec.name) is None:
            return json_error(404, "function_not_found", f"no function named {spec.name!r}")
        try:
            await self.provider.deploy(spec)
        except FunctionStartError as e:
            return json_error(500, "function_start_failed", str(e))
        return web.Response(status=202)

    async def remove_function(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "bad_request", "the request must be a JSON object with functionName")
        if not isinstance(body, dict):
            return json_error(400, "bad_request", "the request must be a JSON object with functionName")
        try:
            name = policy.function_name(body.get("functionName"))
            policy.check_namespace(body.get("namespace"))
        except DeploymentRefused as e:
            return json_error(400, e.code, e.message)
        # In a thread: a container's stop waits for the watchdog's drain (seconds), which must not hold the loop.
        if not await asyncio.to_thread(self.provider.remove, name):
            return json_error(404, "function_not_found", f"no function named {name!r}")
        return web.Response(status=202)

    async def openapi_document(self, _request: web.Request) -> web.StreamResponse:
        if self.openapi is None or not self.openapi.is_file():
            return json_error(404, "not_found", "this gateway was started without an OpenAPI document")
        return web.FileResponse(self.openapi, headers={"Content-Type": "application/yaml"})

    async def docs_page(self, _request: web.Request) -> web.Response:
        """Swagger UI over /openapi.yaml, from the assets the swagger-ui-bundle package ships (no CDN)."""
        return web.Response(text=_DOCS_PAGE, content_type="text/html")

    async def list_functions(self, _request: web.Request) -> web.Response:
        return web.json_response([self._describe(name) for name in self.provider.functions])

    async def get_function(self, request: web.Request) -> web.Response:
        name = split_name(request.match_info["name"])
        if name not in self.provider.functions:
            return json_error(404, "function_not_found", f"no function named {name!r}")
        return web.json_response(self._describe(name))

    async def function_logs(self, request: web.Request) -> web.StreamResponse:
        """OpenFaaS's log API (see logs.py): NDJSON records of one function, the last `tail`, then new ones
        while `follow` lasts (until the client leaves, the gateway stops, or --logs-follow-timeout)."""
        # Go's url.Values.Get in faas-provider takes the last value of a repeated parameter.
        query = {key: request.query.getall(key)[-1] for key in request.query}
        try:
            wish = LogRequest.from_query(query)
            name = policy.function_name(wish.name)
            policy.check_namespace(wish.namespace)
        except BadLogRequest as e:
            return json_error(422, "bad_request", f"could not parse the log request: {e}")
        except DeploymentRefused as e:
            return json_error(404 if e.code == "namespace_unknown" else 400, e.code, e.message)
        path = self.provider.log_path(name)
        if name not in self.provider.functions and not path.exists():
            return json_error(404, "function_not_found", f"no function named {name!r}")
        source = LogFile(name, path)
        namespace = wish.namespace or policy.NAMESPACE
        records = [r for r in await asyncio.to_thread(source.read_new) if wanted(r, wish)]
        if wish.tail > 0:
            records = records[-wish.tail:]
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            if records:
                await response.write(b"".join(r.json_line(namespace) for r in records))
            deadline = time.monotonic() + self.logs_follow_timeout
            while wish.follow and not self.stopping and time.monotonic() < deadline:
                if request.transport is None or request.transport.is_closing():
                    break  # the client left
                await asyncio.sleep(self.LOG_POLL_SECONDS)
                new = [r for r in source.read_new() if wanted(r, wish)]
                if new:
                    await response.write(b"".join(r.json_line(namespace) for r in new))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left while we wrote
        return response

    async def queue_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.queue.stats())

    async def dead_letters(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.queue.dead_letters())

    async def replay(self, request: web.Request) -> web.Response:
        try:
            replayed = await self.queue.replay(request.match_info["id"])
        except BodyNotKept as e:
            return json_error(409, "dead_letter_body_dropped", str(e))
        if not replayed:
            return json_error(404, "dead_letter_not_found", f"no dead letter {request.match_info['id']!r}")
        return web.json_response({"replayed": request.match_info["id"]}, status=202)

    async def prometheus(self, _request: web.Request) -> web.Response:
        """The gateway's metrics, the queue's depth and the pipeline's counts; without Redis, the gateway's own."""
        stats: dict[str, Any] | None = None
        pipeline: dict[Any, Any] = {}
        try:
            stats = await self.queue.stats()
            pipeline = await self.queue.redis.hgetall(pipeline_metrics.KEY)
        except (RedisError, OSError) as e:
            log.warning("metrics.redis_unavailable", error=str(e))
        # The 0.0.4 text format: what Prometheus servers of every version scrape.
        return web.Response(body=self.metrics.render(stats, pipeline), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    # --- invocations ---------------------------------------------------------------------------
    def _function_env(self, environment: dict[str, str]) -> dict[str, str]:
        """The environment a function's process gets (provider.py): the gateway's, the spec's, the stack's."""
        return {**os.environ, **environment, **self.provider.extra_env}

    def settings_of(self, fn: Deployment) -> Settings:
        """The function's settings, read as the function reads them; once per deployment."""
        made = self._settings.get(fn.spec.name)
        if made is not None and made[0] is fn.spec:
            return made[1]
        settings = load_settings(self._function_env(fn.spec.environment))
        self._settings[fn.spec.name] = (fn.spec, settings)
        return settings

    def async_rules_for(self, fn: Deployment, caller: access.Caller) -> BodyRules:
        """An async body is held in memory and Redis, so it gets the async bound; a verified caller of a
        function that states a body limit (an async upload) may send what that function takes."""
        rules = self.body_rules_for(fn)
        if caller.anonymous or rules is self.body_rules:
            if rules.max_bytes > self.async_max_body:
                return dataclasses.replace(rules, max_bytes=self.async_max_body, too_large_code="payload_too_large",
                                           limit_setting="the gateway's --async-max-body-bytes")
        return rules

    def body_rules_for(self, fn: Deployment) -> BodyRules:
        """The gateway's body rules, with the limit the function states for itself (its stack file's
        `com.ocr-pipeline.body-limit` setting) when it is smaller."""
        return rules_for_function(self.body_rules, fn.spec.body_limit, fn.spec.environment)

    def _from_trusted_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    def _internal_token(self, fn: Deployment) -> str:
        try:
            return self.settings_of(fn).internal_token or ""
        except PipelineError:
            return ""  # settings the function cannot start with: nothing to prove with

    def _forward_headers(self, request: web.Request, call_id: str, internal_token: str = "") -> dict[str, str]:
        """The request's headers for the function, with forwarding headers the gateway vouches for.

        A client's own X-Forwarded-For (or Forwarded, X-Real-IP) is dropped unless it came through a
        trusted proxy (--trusted-proxies): otherwise any client could name itself a fresh address on every
        request and get a fresh rate-limit bucket each time.
        """
        peer = request.remote or ""
        trusted = self._from_trusted_proxy(peer)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP and (trusted or k.lower() not in FORWARDING)
                   and k.lower() not in (VERIFIED_KEY, FORWARDED_PROOF)}
        if headers.get("Authorization", "").strip() == "Bearer":
            del headers["Authorization"]  # faas-cli without a login sends an empty bearer token
        previous = request.headers.get("X-Forwarded-For") if trusted else None
        headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
        if internal_token:
            # The function believes this X-Forwarded-For only with this proof (auth.forwarded_for_vouched).
            headers[auth.FORWARDED_PROOF_HEADER] = auth.forwarded_proof(internal_token, headers["X-Forwarded-For"])
        headers["X-Forwarded-Host"] = request.headers.get("X-Forwarded-Host", request.host) if trusted else request.host
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Call-Id"] = call_id
        headers["X-Start-Time"] = str(time.time_ns())
        return headers

    async def invoke_sync(self, request: web.Request) -> web.StreamResponse:
        name = split_name(request.match_info["name"])
        fn = self.provider.get(name)
        given = edge_rules.given_call_id(request.headers)
        # An id the functions would refuse is not the gateway's to keep either: the call gets its own.
        call_id = given if given and edge_rules.call_id_refusal(given) is None else new_call_id()
        clear_context()
        bind_context(call_id=call_id, function=name)
        started = time.monotonic()
        if fn is None:
            log.info("http.request", method=request.method, path=request.path, status=404, duration_ms=0.0)
            return json_error(404, "function_not_found", f"no function named {name!r}")
        call = _SyncCall(call_id)
        try:
            return await self._call_function(request, fn, call)
        except asyncio.TimeoutError:
            call.status = 504
            return json_error(504, "function_timeout",
                              f"{name} did not answer within its exec_timeout of {fn.spec.exec_timeout:g} s")
        except (aiohttp.ClientError, ConnectionResetError) as e:
            if client_gone(request):
                # The client hung up (mid-body or mid-answer): its doing, not the function's.
                call.status = CLIENT_CLOSED
                log.info("http.client_closed", method=request.method, path=request.path, error=str(e))
                return call.response or json_error(499, "client_closed", "the client left")
            call.status = 502
            return json_error(502, "function_unavailable", f"{name} could not be reached: {e}")
        except asyncio.CancelledError:
            if client_gone(request):
                call.status = CLIENT_CLOSED
            raise
        finally:
            if call.body is not None:
                call.body.close()
            elapsed = time.monotonic() - started
            self.provider.invocations[name] += 1
            self.metrics.observe(name, call.status, elapsed, call.upstream_headers)
            log.info("http.request", method=request.method, path=request.path, status=call.status,
                     duration_ms=round(elapsed * 1000, 1), client=request.remote)

    async def _call_function(self, request: web.Request, fn: Deployment, call: _SyncCall) -> web.StreamResponse:
        """The caller checked and the body received as the function's rules say, then the call relayed to a
        replica and its answer streamed back; `call` records how far it got (for the metrics and the log)."""
        headers = self._forward_headers(request, call.call_id, self._internal_token(fn))
        if request.body_exists and fn.spec.access != access.OPEN:
            # The function's key check, before its body is received: an anonymous upload costs no spool.
            try:
                await asyncio.to_thread(access.check_caller, fn.spec.access, request.headers,
                                        self.settings_of(fn), False)
            except PipelineError as e:
                call.status = e.http_status
                return pipeline_error(e, call.call_id)
        if request.body_exists:
            try:
                call.body = await receive(request, self.body_rules_for(fn), fn.spec.name)
            except BodyRefused as e:
                call.status = e.status
                return body_refused(e, call.call_id)
            headers["Content-Length"] = str(call.body.size)
        assert self.session is not None
        with fn.serving() as replica:
            # The path as the client encoded it: decoding it and encoding it again could change it.
            url = yarl.URL(replica.url + edge_rules.raw_tail(request.raw_path), encoded=True)
            async with self.session.request(
                request.method, url, headers=headers,
                data=call.body.chunks() if call.body is not None else None,
                timeout=aiohttp.ClientTimeout(total=fn.spec.exec_timeout), allow_redirects=False,
            ) as upstream:
                return await self._relay(request, upstream, call)

    @staticmethod
    async def _relay(request: web.Request, upstream: aiohttp.ClientResponse, call: _SyncCall) -> web.StreamResponse:
        """The function's answer to the client as it arrives: its status and headers (hop-by-hop ones left out)."""
        call.status = upstream.status
        call.upstream_headers = dict(upstream.headers)
        call.response = response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                response.headers.add(key, value)
        response.headers["X-Call-Id"] = call.call_id
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(64 * 1024):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def invoke_async(self, request: web.Request) -> web.Response:
        """Queue a call: its caller checked as the function would (access.py), its body within the async bound."""
        name = split_name(request.match_info["name"])
        started = time.monotonic()
        fn = self.provider.get(name)
        if fn is None:
            log.info("http.request", method=request.method, path=request.path, status=404, function=name)
            return json_error(404, "function_not_found", f"no function named {name!r}")
        given = edge_rules.given_call_id(request.headers)
        refused = edge_rules.call_id_refusal(given)
        if refused is not None:
            return json_error(400, "invalid_request_id", refused)
        call_id = given or new_call_id()
        callback_url = request.headers.get("X-Callback-Url")
        if callback_url:
            try:
                # Checked now for a clear 400; resolved and checked again when the callback is sent.
                await self.callback_rules.resolve(callback_url)
            except CallbackRefused as e:
                return json_error(400, "callback_refused", str(e))
        try:
            # Before a byte of the body is read: an anonymous body is never received, let alone stored.
            caller = access.Caller()
            if fn.spec.access != access.OPEN:
                caller = await asyncio.to_thread(access.check_caller, fn.spec.access, request.headers,
                                                 self.settings_of(fn))
        except PipelineError as e:
            log.info("http.request", method=request.method, path=request.path, status=e.http_status,
                     function=name, error_code=e.code, client=request.remote)
            return pipeline_error(e, call_id)
        rules = self.async_rules_for(fn, caller)
        # Bodies of no verified caller are held in memory a few at a time (each up to about 4 x its size while
        # it is encoded for the queue); the others wait for their turn.
        async with self._anonymous_bodies if caller.anonymous else contextlib.nullcontext():
            try:
                received = await receive(request, rules, name)
            except BodyRefused as e:
                return body_refused(e, call_id)
            try:
                body = received.read_all()  # kept in the queue's Redis stream
            finally:
                received.close()
            return await self._enqueue(request, fn, caller, body, call_id, callback_url, started)

    async def _enqueue(self, request: web.Request, fn: Deployment, caller: access.Caller, body: bytes, call_id: str,
                       callback_url: str | None, started: float) -> web.Response:
        name = fn.spec.name
        invocation = Invocation(
            function=name, path=edge_rules.raw_tail(request.raw_path).partition("?")[0],
            query=request.raw_path.partition("?")[2],
            method=request.method,
            headers=access.stored_headers(self._forward_headers(request, call_id, self._internal_token(fn))),
            body=body, call_id=call_id, callback_url=callback_url, lane=request.headers.get(LANE_HEADER, ""),
            caller_kind=caller.kind, key_id=caller.key_id,
        )
        try:
            if caller.anonymous:
                # Counted as stored (headers too), against a budget shared by every such call.
                size = len(invocation.dumps())
                if not await self.queue.admit_open(size, self.open_queue_budget):
                    return json_error(503, "queue_full",
                                      f"the queue holds {self.open_queue_budget} bytes of calls without a verified "
                                      "caller, its bound; retry later", headers={"Retry-After": "10"})
                invocation.counted = size
            await self.queue.enqueue(invocation)
        except (RedisError, OSError) as e:
            # MinIO keeps the event in its queue dir and delivers it again on a non-2xx.
            log.error("queue.enqueue_failed", function=name, call_id=call_id, error=str(e))
            if invocation.counted:
                with contextlib.suppress(RedisError, OSError):
                    await self.queue.give_back(invocation.counted)
            return json_error(503, "queue_unavailable", "the async queue is unavailable; retry later")
        log.info("http.request", method=request.method, path=request.path, status=202, call_id=call_id,
                 function=name, duration_ms=round((time.monotonic() - started) * 1000, 1), client=request.remote)
        return web.Response(status=202, headers={"X-Call-Id": call_id})

    async def run_queued(self, invocation: Invocation) -> Result:
        """Call a function for the queue; any failure is a Result with status 0, never an exception."""
        fn = self.provider.get(invocation.function)
        if fn is None:
            return Result(404, b"", {}, f"no function named {invocation.function!r}")
        assert self.session is not None
        headers = dict(invocation.headers)
        headers.pop("Content-Length", None)
        started = time.monotonic()
        try:
            if invocation.caller_kind:
                caller = access.Caller(invocation.caller_kind, invocation.key_id)
                headers.update(access.call_headers(caller, self.settings_of(fn)))
        except PipelineError as e:
            return Result(0, b"", {}, f"the function's settings cannot be read: {e.message}")
        try:
            # The least busy replica: queue workers calling side by side spread over a scaled function.
            with fn.serving() as replica:
                async with self.session.request(
                    invocation.method,
                    yarl.URL(replica.url + invocation.path + ("?" + invocation.query if invocation.query else ""),
                             encoded=True),
                    headers=headers, data=invocation.body, timeout=aiohttp.ClientTimeout(total=fn.spec.exec_timeout),
                ) as upstream:
                    body = await upstream.read()
                    result = Result(upstream.status, body, dict(upstream.headers))
        except asyncio.TimeoutError:
            result = Result(0, b"", {}, f"timed out after {fn.spec.exec_timeout:g} s")
        except aiohttp.ClientError as e:
            result = Result(0, b"", {}, f"unreachable: {e}")
        self.provider.invocations[invocation.function] += 1
        self.metrics.observe(invocation.function, result.status or 502, time.monotonic() - started, result.headers)
        return result

    async def send_callback(self, invocation: Invocation, result: Result) -> None:
        """Once, like OpenFaaS: a callback that fails is logged, not retried.

        The host is resolved and checked here, and the connection pinned to what was checked; a redirect
        is not followed (it could point anywhere the checks would have refused).
        """
        assert invocation.callback_url
        headers = {"X-Call-Id": invocation.call_id, "X-Function-Status": str(result.status or 502),
                   "X-Function-Name": invocation.function,
                   "Content-Type": result.headers.get("Content-Type", "application/octet-stream")}
        try:
            addresses = await self.callback_rules.resolve(invocation.callback_url)
        except CallbackRefused as e:
            log.warning("queue.callback_refused", call_id=invocation.call_id, error=str(e))
            return
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(addresses), use_dns_cache=False)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(invocation.callback_url, data=result.body, headers=headers,
                                        allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30)) as reply:
                    log.info("queue.callback", call_id=invocation.call_id, status=reply.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.warning("queue.callback_failed", call_id=invocation.call_id, error=str(e))
