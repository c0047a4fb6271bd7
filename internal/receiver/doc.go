// Package receiver is the Shared Signals (SSF 1.0) receiver: the
// transmitters this authority takes security events from, the check of
// each Security Event Token (SET) they deliver, and its application to
// bans and sessions.
//
// What it owns: the transmitter records (storage.SignalTransmitter: the
// transmitter's configuration, keys, our stream at it and the credentials
// both ways) and the received-SET records (storage.ReceivedSET, one per
// applied jti). Bans and revocations it makes go through the authority's
// own writes (authority.Writer: CreateBan, LiftBan, RevokeExternal,
// RevokeUserSessions) as actor "ssf:<transmitter id>" on channel "ssf",
// so that their rules, events and audit are those of any other caller;
// the Writer lets it commit a run of SETs, with their records, in one
// transaction.
//
// Adding a transmitter fetches its /.well-known/ssf-configuration and its
// JWKS under the external issuers' URL rules (https; http only on loopback
// or under serve --insecure: authority.CheckFetchURL, FetchHTTP), then
// creates our stream at its configuration_endpoint asking for the five
// events applied here, delivered by push (to <public URL>/ssf/receive/<id>
// with a random bearer secret of which only the SHA-256 is stored) or by
// poll.
//
// Every SET, pushed (Receive) or polled (Run), goes through one path:
// prepare (ssf.Verify: signature with one of the transmitter's keys, iss =
// its issuer, aud = the configured audience, iat within the window, with
// one refetch of the JWKS when the kid is unknown, at most once a minute
// per transmitter; then plan, which reads the action the event asks for),
// then applyRun, which applies a run of SETs in order in one transaction:
// per SET the replay check, the action, the ReceivedSET and the
// "signal.apply" audit record, all committing together. A SET whose action
// failed is not recorded: the transmitter delivers it again.
//
// Pushed SETs reach applyRun through a sequencer per transmitter (order.go):
// a transmitter that keeps several in flight chains them (ssf.SET.PrevJTI);
// a SET waits for its predecessor (at most HoldTimeout, then a retryable
// refusal), and the ready SETs gather into runs while the previous run
// commits: group commit, one durable commit per run. A SET is answered once
// applied, so a transmitter's acknowledgements are a prefix of the stream
// that is applied. A poll's SETs are one run.
//
// The iat window: at most MaxSkew (5 minutes) in the future; at most
// PushMaxAge (1 hour) old for push, PollMaxAge (7 days) for poll, since a
// polling receiver that was down collects SETs the transmitter queued
// meanwhile. A ReceivedSET is kept until iat + that age + the skew, after
// which the iat check alone refuses the SET; Run sweeps the older ones.
package receiver
