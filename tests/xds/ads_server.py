"""A real xDS management server for ringside-ctld's tests: ADS over plaintext gRPC on an
ephemeral 127.0.0.1 port, state of the world (StreamAggregatedResources) and incremental
(DeltaAggregatedResources: each response carries what changed since the last one the
stream was sent, by resource, and the names removed), with grpcio and xds-protos (Envoy's
own generated protos).

Prints one JSON line, {"port": N}, once it serves. Then reads commands on stdin, one JSON
object per line, and answers each with one JSON line on stdout:

- {"op": "set", "version": "v1", "resources": {"cds": [...], "eds": [...], "lds": [...],
  "rds": [...]}}: the resources, in Envoy's JSON form (typed configs with "@type"),
  replace the server's; every open stream is sent each type it subscribed to, in Envoy's
  order (CDS, EDS, LDS, RDS). A resource {"@bytes": "HEX"} is sent as those bytes (a
  malformed resource). Optional "per_node": {"NODE ID": {"lds": [...]}, ...}: the stream
  of that node is sent these instead of the common ones of those kinds (two clients, such
  as ctld and Envoy, each bind listener ports of their own). Answer {"ok": true, "sent":
  unix time the responses were queued} (or {"error": "..."}).
- {"op": "reset"}: every open stream is ended with UNAVAILABLE.
- {"op": "state"}: {"streams": [{"node": ..., "cluster": ..., "metadata": {...},
  "opened": unix time, "delta": true if incremental}], "opened": [unix time of every stream opened], "acks": {"cds": version, ...}, "nacks": [{"node": ..., "type": ...,
  "version": ..., "nonce": ..., "error": ...}]}: what ctld said.

With `--sds-uds PATH`, the same process is also a local SDS server on that Unix socket, as
istio-agent is for an Istio sidecar: SecretDiscoveryService.StreamSecrets (state of the
world), serving the secrets of the "sds_local" kind of `set` (not those of "sds", which
ADS serves). Its streams are in "streams" with "local": true; its ACKs are under
acks["sds_local"] and its NACKs have type "sds_local". {"op": "reset_local"} ends its
streams with UNAVAILABLE.

Exits when stdin closes (so it dies with the test).
"""

import hashlib
import json
import queue
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import any_pb2, json_format

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

# Typed configs the tests' resources name, imported so that "@type" resolves.
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2  # noqa: F401

KINDS = {
    "cds": ("type.googleapis.com/envoy.config.cluster.v3.Cluster", cluster_pb2.Cluster, "name"),
    "eds": (
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        endpoint_pb2.ClusterLoadAssignment,
        "cluster_name",
    ),
    "lds": ("type.googleapis.com/envoy.config.listener.v3.Listener", listener_pb2.Listener, "name"),
    "rds": (
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        route_pb2.RouteConfiguration,
        "name",
    ),
    "sds": (
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        secret_pb2.Secret,
        "name",
    ),
}
KIND_OF = {url: kind for kind, (url, _, _) in KINDS.items()}
# The local SDS server's secrets: the type of "sds", served on the Unix socket only.
KINDS["sds_local"] = KINDS["sds"]
ORDER = ["cds", "eds", "lds", "rds", "sds", "sds_local"]

lock = threading.Lock()
resources = {kind: [] for kind in ORDER}  # kind -> [(name, Any)]
per_node = {}  # node id -> {kind -> [(name, Any)]}: that node's own resources of the kind
version = "0"
nonce_counter = [0]
streams = []
all_streams = []  # the opening time of every stream, in order
acks = {}
nacks = []


class Stream:
    local = False

    def __init__(self, context):
        self.context = context
        self.out = queue.Queue()
        self.names = {}  # kind -> requested names (None: wildcard)
        self.node = None
        self.opened = time.time()

    def send(self, kind):
        """Queues the kind's resources as one response (under `lock`)."""
        url, _, _ = KINDS[kind]
        names = self.names.get(kind)
        nonce_counter[0] += 1
        resp = discovery_pb2.DiscoveryResponse(
            version_info=version, type_url=url, nonce=str(nonce_counter[0])
        )
        own = per_node.get(self.node.id, {}) if self.node else {}
        served = "sds_local" if self.local else kind
        for name, any_msg in own.get(served, resources[served]):
            if not names or name in names:
                resp.resources.append(any_msg)
        self.out.put(resp)


class LocalStream(Stream):
    """A stream of the local SDS server (--sds-uds)."""

    local = True


class DeltaStream:
    """An incremental stream: what it subscribed to, and what it was sent (or said it has)."""

    local = False

    def __init__(self, context):
        self.context = context
        self.out = queue.Queue()
        self.names = {}  # kind -> subscribed names (None: wildcard)
        self.has = {}  # kind -> {name: resource version} the client has
        self.pending = {}  # kind -> nonce of the response not answered yet
        self.versions = {}  # nonce -> the server's version when it was sent
        self.node = None
        self.opened = time.time()
        self.delta = True

    def send(self, kind):
        """Queues what changed for the kind since the last response (under `lock`); the first
        response of a kind is sent even when empty."""
        url, _, _ = KINDS[kind]
        names = self.names.get(kind)
        own = per_node.get(self.node.id, {}) if self.node else {}
        current = {
            name: any_msg
            for name, any_msg in own.get(kind, resources[kind])
            if names is None or name in names
        }
        has = self.has.get(kind)
        first = has is None
        has = has or {}
        resp = discovery_pb2.DeltaDiscoveryResponse(system_version_info=version, type_url=url)
        for name, any_msg in current.items():
            v = hashlib.sha256(any_msg.value).hexdigest()[:16]
            if has.get(name) != v:
                resp.resources.append(
                    discovery_pb2.Resource(name=name, version=v, resource=any_msg)
                )
                has[name] = v
        for name in [n for n in has if n not in current]:
            resp.removed_resources.append(name)
            del has[name]
        self.has[kind] = has
        if first or resp.resources or resp.removed_resources:
            nonce_counter[0] += 1
            resp.nonce = str(nonce_counter[0])
            self.pending[kind] = resp.nonce
            self.versions[resp.nonce] = version
            self.out.put(resp)
        elif kind not in self.pending:
            # Nothing changed for a client that acknowledged everything: it is current.
            acks[kind] = version


def on_delta_request(stream, req):
    kind = KIND_OF.get(req.type_url)
    with lock:
        if req.HasField("node") and stream.node is None:
            stream.node = req.node
        if kind is None:
            return
        if req.response_nonce and stream.pending.get(kind) == req.response_nonce:
            del stream.pending[kind]
        record_answer(stream, kind, req, stream.versions.get(req.response_nonce, version))
        first = kind not in stream.names
        if first:
            stream.has[kind] = dict(req.initial_resource_versions) or None
            wildcard = kind in ("cds", "lds") and not req.resource_names_subscribe
            stream.names[kind] = None if wildcard else set()
        names = stream.names[kind]
        changed = first
        if names is not None:
            for n in req.resource_names_subscribe:
                if n not in names:
                    names.add(n)
                    changed = True
            for n in req.resource_names_unsubscribe:
                if n in names:
                    names.discard(n)
                    # The client forgets it; nothing to say about it later.
                    (stream.has.get(kind) or {}).pop(n, None)
                    changed = True
        if changed:
            stream.send(kind)


def record_answer(stream, kind, req, answered):
    """Records a request's NACK, or its ACK of version `answered` (under `lock`)."""
    if stream.local:
        kind = "sds_local"
    if req.HasField("error_detail"):
        nacks.append(
            {
                "node": stream.node.id if stream.node else None,
                "type": kind,
                "version": answered,
                "nonce": req.response_nonce,
                "error": req.error_detail.message,
            }
        )
    elif req.response_nonce:
        acks[kind] = answered


def on_request(stream, req):
    kind = KIND_OF.get(req.type_url)
    with lock:
        if req.HasField("node") and stream.node is None:
            stream.node = req.node
        if kind is None or (stream.local and kind != "sds"):
            return
        record_answer(stream, kind, req, req.version_info)
        names = sorted(req.resource_names)
        if kind not in stream.names or stream.names[kind] != names:
            stream.names[kind] = names
            stream.send(kind)


class Ads(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def StreamAggregatedResources(self, request_iterator, context):
        return serve(Stream(context), on_request, request_iterator, context)

    def DeltaAggregatedResources(self, request_iterator, context):
        return serve(DeltaStream(context), on_delta_request, request_iterator, context)


class LocalSds(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def StreamSecrets(self, request_iterator, context):
        return serve(LocalStream(context), on_request, request_iterator, context)


def serve(stream, on_request, request_iterator, context):
    """Reads the stream's requests on a thread of their own (`on_request`) and yields what
    they and the commands queue, until the stream ends."""
    with lock:
        streams.append(stream)
        all_streams.append(stream.opened)

    def read():
        try:
            for req in request_iterator:
                on_request(stream, req)
        except Exception:  # the stream ended
            pass
        stream.out.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            try:
                item = stream.out.get(timeout=0.2)
            except queue.Empty:
                if not context.is_active():
                    return
                continue
            if item is None:
                return
            if item == "reset":
                context.abort(grpc.StatusCode.UNAVAILABLE, "reset by the test")
            yield item
    finally:
        with lock:
            if stream in streams:
                streams.remove(stream)


def parse(kinds):
    """{kind: [JSON resource]} → {kind: [(name, Any)]}, for the kinds given."""
    parsed = {}
    for kind in ORDER:
        if kind not in kinds:
            continue
        _, cls, key = KINDS[kind]
        out = []
        for d in kinds[kind]:
            if "@bytes" in d:
                # A malformed resource: these bytes as the value of an Any of this type.
                raw = bytes.fromhex(d["@bytes"])
                out.append((d.get("name", ""), any_pb2.Any(type_url=KINDS[kind][0], value=raw)))
                continue
            msg = json_format.ParseDict(d, cls())
            packed = any_pb2.Any()
            packed.Pack(msg)
            out.append((getattr(msg, key), packed))
        parsed[kind] = out
    return parsed


def command(cmd):
    global version
    op = cmd.get("op")
    if op == "set":
        parsed = parse(cmd.get("resources", {}))
        parsed = {kind: parsed.get(kind, []) for kind in ORDER}
        nodes = {node: parse(kinds) for node, kinds in cmd.get("per_node", {}).items()}
        with lock:
            version = str(cmd.get("version", version))
            resources.update(parsed)
            per_node.clear()
            per_node.update(nodes)
            for s in streams:
                for kind in ORDER:
                    if kind in s.names:
                        s.send(kind)
        return {"ok": True, "sent": time.time()}
    if op in ("reset", "reset_local"):
        with lock:
            for s in streams:
                if s.local == (op == "reset_local"):
                    s.out.put("reset")
        return {"ok": True}
    if op == "state":
        with lock:
            return {
                "streams": [
                    {
                        "node": s.node.id if s.node else None,
                        "cluster": s.node.cluster if s.node else None,
                        "metadata": json_format.MessageToDict(s.node.metadata) if s.node else None,
                        "opened": s.opened,
                        "delta": getattr(s, "delta", False),
                        "local": s.local,
                    }
                    for s in streams
                ],
                "opened": list(all_streams),
                "acks": dict(acks),
                "nacks": list(nacks),
            }
    return {"error": f"unknown op {op!r}"}


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(Ads(), server)
    # --port N: serve on that port again (a restarted server); else an ephemeral one.
    want = sys.argv[sys.argv.index("--port") + 1] if "--port" in sys.argv else "0"
    if "--tls" in sys.argv:
        # --tls CERT KEY [--client-ca CA]: TLS, and with a client CA, mTLS (client
        # certificates required).
        i = sys.argv.index("--tls")
        cert, key = (open(p, "rb").read() for p in sys.argv[i + 1 : i + 3])
        ca = None
        if "--client-ca" in sys.argv:
            ca = open(sys.argv[sys.argv.index("--client-ca") + 1], "rb").read()
        creds = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )
        port = server.add_secure_port(f"127.0.0.1:{want}", creds)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{want}")
    if "--sds-uds" in sys.argv:
        local = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(LocalSds(), local)
        local.add_insecure_port("unix:" + sys.argv[sys.argv.index("--sds-uds") + 1])
        local.start()
    server.start()
    print(json.dumps({"port": port}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            answer = command(json.loads(line))
        except Exception as e:  # a bad command is the test's bug: say so
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
