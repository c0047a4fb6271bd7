"""Drives subscriber.py against a running authority and prints one
machine-checkable line per step (cmd/portcullis/python_subscriber_test.go
asserts them). Run it with the generated stubs on PYTHONPATH:

    scenario.py GRPC_ADDR JWKS_URL ADMIN_API_KEY

It needs an authority whose checkpoint interval is long (the test uses 1h),
so that only the caught-up marker can end a catch-up. The writes it makes
(a login, three bans) stand in for the rest of the system; a subscriber
proper only reads.
"""

import sys

import grpc
import jwt  # PyJWT (python3-jwt); EdDSA needs python3-cryptography

from portcullis.v1 import (
    ban_service_pb2,
    ban_service_pb2_grpc,
    errors_pb2,
    event_service_pb2_grpc,
    session_service_pb2,
    session_service_pb2_grpc,
    types_pb2,
)

import subscriber

ISSUER = "portcullis"  # serve --issuer (default)
AUDIENCE = "portcullis"  # serve --audience (default)
DEADLINE = 60  # seconds: a hang guard for each call, not a timing


def out(line):
    print(line, flush=True)


def expect(what, got, want):
    if got != want:
        raise SystemExit(f"FAIL {what}: got {got!r}, want {want!r}")


def main(addr, jwks_url, admin_key):
    channel = grpc.insecure_channel(addr)
    auth = [("authorization", "Bearer " + admin_key)]
    sessions = session_service_pb2_grpc.SessionServiceStub(channel)
    bans = ban_service_pb2_grpc.BanServiceStub(channel)
    events = event_service_pb2_grpc.EventServiceStub(channel)

    def ban(user, duration=""):
        req = ban_service_pb2.CreateBanRequest(subject=types_pb2.Subject(user_id=user), duration=duration, reason="python")
        return bans.CreateBan(req, metadata=auth, timeout=DEADLINE).ban

    # 1. An access token, verified with PyJWT from the JWKS: signature,
    #    issuer, audience and expiry.
    login = sessions.CreateSession(session_service_pb2.CreateSessionRequest(user_id="alice"), metadata=auth, timeout=DEADLINE)
    key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(login.access_token)
    claims = jwt.decode(login.access_token, key.key, algorithms=["EdDSA"], issuer=ISSUER, audience=AUDIENCE)
    out(f"TOKEN_OK iss={claims['iss']} aud={','.join(claims['aud'])} sub={claims['sub']} sid={claims['sid']} tid={claims['tid']}")
    try:
        jwt.decode(login.access_token, key.key, algorithms=["EdDSA"], issuer=ISSUER, audience="someone-else")
        out("TOKEN_OTHER_AUDIENCE accepted")
    except jwt.InvalidAudienceError:
        out("TOKEN_OTHER_AUDIENCE refused")

    # 2. From revision 0: a snapshot, then at once the caught-up marker.
    mirror = subscriber.Mirror()
    stream = subscriber.watch(events, mirror, admin_key)
    what, _, caught_up = next(stream)
    expect("first message", what, "snapshot")
    out(f"SNAPSHOT rev={mirror.revision} store={mirror.store_id} bans={len(mirror.bans)}")
    what, _, caught_up = next(stream)
    expect("after the snapshot", (what, caught_up), ("checkpoint", True))
    out(f"CAUGHT_UP rev={mirror.revision} changes=0")

    # 3. Live: a ban (an hour long, so that it has an expiry) arrives as a
    #    change.
    banned = ban("alice", "1h")
    what, evs, _ = next(stream)
    expect("after the ban", what, "change")
    created = [e.ban_created.ban_id for e in evs if e.WhichOneof("kind") == "ban_created"]
    out(f"CHANGE rev={mirror.revision} ban_created={','.join(created)}")
    expect("the ban's ID", created, [banned.ban_id])

    # 4. Drop the stream; two writes happen while it is down.
    stream.close()
    after, store_id = mirror.revision, mirror.store_id
    missed = [ban("bob").ban_id, ban("carol").ban_id]
    out(f"DROPPED after={after} missed={','.join(missed)}")

    # 5. Resume with the last revision and store_id: exactly the missed
    #    changes, then the caught-up marker (no checkpoint interval passes).
    stream = subscriber.watch(events, mirror, admin_key)
    got = []
    for what, evs, caught_up in stream:
        if what == "snapshot":
            raise SystemExit("FAIL the resume began with a snapshot")
        if what == "change":
            got += [e.ban_created.ban_id for e in evs if e.WhichOneof("kind") == "ban_created"]
            out(f"RESUMED_CHANGE rev={mirror.revision} ban_created={','.join(e.ban_created.ban_id for e in evs)}")
            continue
        expect("the first checkpoint is the marker", caught_up, True)
        break
    stream.close()
    expect("store after the resume", mirror.store_id, store_id)
    expect("the missed changes", got, missed)
    out(f"CAUGHT_UP rev={mirror.revision} changes={len(got)} after={after}")

    # 6. A refusal: alice's token, checked by the authority, is refused by
    #    her ban; the details come from the grpc-status-details-bin trailer.
    try:
        sessions.VerifySession(session_service_pb2.VerifySessionRequest(access_token=login.access_token), metadata=auth, timeout=DEADLINE)
        out("REFUSED none")
    except grpc.RpcError as rpc_err:
        err = subscriber.decode_error(rpc_err)
        expect("reason enum round trip", errors_pb2.ErrorReason.Name(err.reason_enum), err.reason)
        out(
            f"REFUSED code={err.code.name} reason={err.reason} enum={err.reason_enum} "
            f"ban_id={err.metadata.get('ban_id', '')} expire_time={err.metadata.get('expire_time', '')}"
        )

    # 7. A refusal that means "do not reconnect": a wrong API key.
    try:
        next(subscriber.watch(events, subscriber.Mirror(), "pck_not-a-key"))
        out("WRONG_KEY none")
    except subscriber.PortcullisError as err:
        out(f"WRONG_KEY code={err.code.name} reason={err.reason} reconnect={err.code in subscriber.RECONNECT}")
    out("DONE")


if __name__ == "__main__":
    main(*sys.argv[1:4])
