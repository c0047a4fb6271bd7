"""A complete small Portcullis event-stream subscriber, in Python.

It follows EventService.Watch the way README "Follow the event stream from
any language" describes: snapshot parts, changes, checkpoints (the first
one of a stream is the caught-up marker), resuming with revision and
store_id, and reconnecting only on the errors that mean it. Errors are
decoded from the `grpc-status-details-bin` trailer with nothing but what
the repository publishes: stubs generated from proto/ (google/rpc
included). Generate them with the Debian packages protobuf-compiler and
protobuf-compiler-grpc:

    protoc -Iproto --python_out=OUT --grpc_python_out=OUT \
        --plugin=protoc-gen-grpc_python=$(command -v grpc_python_plugin) \
        proto/portcullis/v1/*.proto proto/google/rpc/*.proto

then run with OUT on PYTHONPATH (python3-grpcio, python3-protobuf):

    PORTCULLIS_API_KEY=pck_... python3 subscriber.py 127.0.0.1:7470

It prints one line per event and says when it has caught up. scenario.py
(run by cmd/portcullis/python_subscriber_test.go) drives it through a
ban, a dropped stream, a resume and a refusal.
"""

import os
import sys
import time

import grpc

from google.rpc import error_details_pb2, status_pb2
from portcullis.v1 import errors_pb2, event_service_pb2, event_service_pb2_grpc

ERROR_DOMAIN = "portcullis.dev"


class PortcullisError(Exception):
    """A failed call: its gRPC code, message, and the ErrorInfo details."""

    def __init__(self, code, message, reason="", metadata=None, retry_delay=None):
        super().__init__(f"{code.name}: {reason or '-'}: {message}")
        self.code = code
        self.message = message
        # The wire reason is the ErrorReason value's own name, so the
        # generated enum maps it directly: errors_pb2.ErrorReason.Value(reason).
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.retry_delay = retry_delay  # seconds, from a google.rpc.RetryInfo

    @property
    def reason_enum(self):
        """The reason as an ErrorReason number (0 for a reason this stub does not know)."""
        try:
            return errors_pb2.ErrorReason.Value(self.reason)
        except ValueError:
            return errors_pb2.ERROR_REASON_UNSPECIFIED


def decode_error(err):
    """Turns a grpc.RpcError into a PortcullisError.

    gRPC sends the full status, serialized as a google.rpc.Status, in the
    `grpc-status-details-bin` trailer; its `details` are Any messages, of
    which a google.rpc.ErrorInfo (domain "portcullis.dev") carries the
    reason and metadata, and a google.rpc.RetryInfo, when present, the
    delay before retrying.
    """
    reason, metadata, retry = "", {}, None
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        st = status_pb2.Status.FromString(value)
        for detail in st.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == ERROR_DOMAIN:
                    reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                ri = error_details_pb2.RetryInfo()
                detail.Unpack(ri)
                retry = ri.retry_delay.ToTimedelta().total_seconds()
    return PortcullisError(err.code(), err.details(), reason, metadata, retry)


# The codes after which a Watch stream is reopened, with backoff, resuming
# from the last complete revision (README "Follow the event stream from any
# language"): the authority restarted, is shutting down, or cut a
# subscriber that stopped reporting progress, or the connection broke
# (UNAVAILABLE); the subscriber read too slowly, asked for a snapshot too
# soon (wait the RetryInfo delay) or the key has too many streams
# (RESOURCE_EXHAUSTED); an internal error the authority logged, or a proxy's
# (INTERNAL, UNKNOWN). Anything else will not fix itself: UNAUTHENTICATED
# (the API key is wrong, revoked or expired), PERMISSION_DENIED (it lacks
# events:watch), INVALID_ARGUMENT, UNIMPLEMENTED.
RECONNECT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


class Mirror:
    """What a verifier keeps: the active bans and revoked sessions, at a
    revision of a store. A real one would also keep the keys (Snapshot.keys,
    key_added, key_retired) to verify tokens locally."""

    def __init__(self):
        self.store_id = ""
        self.revision = 0  # complete revisions only: resume from it
        self.bans = {}  # ban_id -> Ban
        self.revoked = {}  # session_id -> RevokedSession
        self._parts = []  # the parts of a snapshot still arriving

    def apply(self, resp):
        """Applies one WatchResponse; returns what it was, for printing:
        ("snapshot", parts) once the last part is in, ("change", events),
        ("checkpoint", None), or None for a snapshot part with more to come."""
        kind = resp.WhichOneof("payload")
        if kind == "snapshot":
            self._parts.append(resp.snapshot)
            if resp.snapshot.more:
                return None  # the revision is not reached before the last part
            parts, self._parts = self._parts, []
            self.bans = {b.ban_id: b for p in parts for b in p.bans}
            self.revoked = {s.session_id: s for p in parts for s in p.revoked_sessions}
            self.store_id, self.revision = resp.store_id, resp.revision
            return ("snapshot", parts)
        if kind == "change":
            for ev in resp.change.events:
                what = ev.WhichOneof("kind")
                if what == "ban_created":
                    self.bans[ev.ban_created.ban_id] = ev.ban_created
                elif what == "ban_lifted":
                    self.bans.pop(ev.ban_lifted.ban_id, None)
                elif what == "session_revoked":
                    self.revoked[ev.session_revoked.session_id] = ev.session_revoked
            self.store_id, self.revision = resp.store_id, resp.revision
            return ("change", list(resp.change.events))
        self.store_id, self.revision = resp.store_id, resp.revision
        return ("checkpoint", None)

    def drop_unfinished_snapshot(self):
        """A stream that ends mid-snapshot leaves the mirror where it was."""
        self._parts = []


def watch(stub, mirror, api_key, identity=None):
    """Opens one Watch stream from the mirror's position and yields
    (what, detail, caught_up) for every complete message; caught_up is True
    for the stream's first checkpoint: the authority sends it as soon as it
    has delivered everything up to its revision at the stream's start
    (right after a snapshot, or after a resume's missed changes). The
    caller may stop iterating at any time (call.cancel() drops the
    stream)."""
    req = event_service_pb2.WatchRequest(after_revision=mirror.revision, store_id=mirror.store_id)
    if identity is not None:
        req.identity.CopyFrom(identity)  # takes part in the progress protocol
    call = stub.Watch(req, metadata=[("authorization", "Bearer " + api_key)])
    caught_up = False
    try:
        for resp in call:
            applied = mirror.apply(resp)
            if applied is None:
                continue
            what, detail = applied
            first_checkpoint = what == "checkpoint" and not caught_up
            caught_up = caught_up or first_checkpoint
            yield what, detail, first_checkpoint
    except grpc.RpcError as err:
        mirror.drop_unfinished_snapshot()
        raise decode_error(err) from None
    finally:
        call.cancel()


def event_line(ev):
    what = ev.WhichOneof("kind")
    obj = getattr(ev, what)
    ident = getattr(obj, "ban_id", "") or getattr(obj, "session_id", "") or getattr(obj, "key_id", "")
    return f"{what} {ident}"


def follow_forever(addr, api_key, out=sys.stdout):
    """Follows the stream until interrupted, reconnecting with backoff."""
    mirror = Mirror()
    stub = event_service_pb2_grpc.EventServiceStub(grpc.insecure_channel(addr))
    backoff = 0.25
    while True:
        try:
            for what, detail, caught_up in watch(stub, mirror, api_key):
                backoff = 0.25
                if what == "snapshot":
                    print(f"rev={mirror.revision} snapshot store={mirror.store_id} bans={len(mirror.bans)}", file=out)
                elif what == "change":
                    for ev in detail:
                        print(f"rev={mirror.revision} {event_line(ev)}", file=out)
                if caught_up:
                    print(f"rev={mirror.revision} caught up", file=out)
                out.flush()
        except PortcullisError as err:
            if err.code not in RECONNECT:
                raise
            wait = err.retry_delay if err.retry_delay is not None else backoff
            print(f"stream ended ({err}); resuming after revision {mirror.revision} in {wait:.2f}s", file=sys.stderr)
            time.sleep(wait)
            backoff = min(backoff * 2, 10)


if __name__ == "__main__":
    follow_forever(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7470", os.environ["PORTCULLIS_API_KEY"])
